"""Where the notebooks run: library versions and the devices JAX sees, in a few lines.

Each notebook's first cell prints :func:`summary` in Google Colab, so that a learner (and
whoever helps them) sees at once which jax, flax and ipywidgets are in use and whether a GPU
or TPU is doing the work.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["accelerator", "summary"]

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "ipywidgets")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def accelerator(devices=None) -> str | None:
    """The accelerator platform JAX uses (``"gpu"`` or ``"tpu"``), or ``None`` for the CPU.

    Args:
      devices: a list of ``jax.Device``; defaults to ``jax.devices()``.
    """
    import jax

    devices = jax.devices() if devices is None else devices
    platforms = {d.platform for d in devices}
    for platform in ("tpu", "gpu", "cuda", "rocm"):
        if platform in platforms:
            return "gpu" if platform in ("cuda", "rocm") else platform
    return None


def summary(devices=None) -> str:
    """Versions of jax, jaxlib, flax, optax and ipywidgets, the devices, and a one-line verdict.

    Args:
      devices: a list of ``jax.Device``; defaults to ``jax.devices()``.

    Returns:
      Three lines of text, e.g.::

        jax 0.7.2 · jaxlib 0.7.2 · flax 0.11.2 · optax 0.2.8 · ipywidgets 7.7.1
        devices: 1 × cpu (TFRT_CPU_0)
        No GPU or TPU: running on the CPU (fine for every notebook; ...).
    """
    import jax

    devices = jax.devices() if devices is None else devices
    versions = " · ".join(f"{p} {_version(p)}" for p in _PACKAGES)
    kinds: dict[str, list[str]] = {}
    for d in devices:
        kinds.setdefault(d.platform, []).append(str(d))
    listed = "; ".join(f"{len(names)} × {platform} ({', '.join(names[:2])}"
                       f"{', ...' if len(names) > 2 else ''})" for platform, names in kinds.items())
    found = accelerator(devices)
    if found is None:
        verdict = ("No GPU or TPU: running on the CPU (fine for every notebook; in Colab, "
                   "Runtime > Change runtime type adds one).")
    else:
        verdict = f"Using the {found.upper()}: JAX places arrays and compiled code there."
    return f"{versions}\ndevices: {listed}\n{verdict}"

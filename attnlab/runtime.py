"""Where the notebooks run: library versions, the devices JAX sees, and the memory XLA keeps.

Each notebook's first cell prints :func:`summary` in Google Colab, so that a learner (and
whoever helps them) sees at once which jax, flax and ipywidgets are in use and whether a GPU
or TPU is doing the work.

``import attnlab`` also calls :func:`release_memory_after_compiles`: after each XLA
compilation the C library hands the compiler's freed memory back to the operating system,
which lowers the peak memory of a training run by about a sixth (``benchmarks/NOTES.md``).
Set the environment variable ``ATTNLAB_RELEASE_MEMORY=0`` before the import to leave it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from importlib import metadata

__all__ = ["accelerator", "release_memory_after_compiles", "summary"]

#: The event JAX records when XLA has finished compiling a program (jax >= 0.4; 0.7.2 included).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_malloc_trim = None  # glibc's malloc_trim, once looked up
_state = {"registered": False, "enabled": False}

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
    for name in ("tpu", "gpu", "cuda", "rocm"):
        if name in platforms:
            return "gpu" if name in ("cuda", "rocm") else name
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


def _glibc_malloc_trim():
    """glibc's ``malloc_trim`` as a ctypes function, or ``None`` on another C library."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def _trim_after_compile(event: str, duration: float, **kwargs) -> None:
    if _state["enabled"] and event == BACKEND_COMPILE_EVENT:
        _malloc_trim(0)


def release_memory_after_compiles(enable: bool = True) -> bool:
    """After every XLA compilation, give the memory the compiler freed back to the OS.

    Compiling a training step takes a few hundred MiB, which the compiler frees when it is done.
    glibc's allocator keeps such freed memory for later use instead of returning it, so the
    program's first run then allocates its buffers on top of it, and the process's peak
    resident memory is the sum of both. A JAX monitoring listener calls glibc's
    ``malloc_trim(0)`` as each compilation ends (before the program first runs), which returns
    the free memory. For the ``default`` preset's training step on 2 CPU cores this lowered
    the peak resident memory from about 680 to 560 MiB; each call costs about a millisecond
    (``benchmarks/NOTES.md``). Computations and their results are unchanged.

    Args:
      enable: ``True`` turns the release on (the listener is registered once, however often
        this is called); ``False`` turns it off.

    Returns:
      Whether the release is on now: always ``False`` where the C library is not glibc
      (macOS, Windows, musl), whose allocators are left alone.
    """
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = _glibc_malloc_trim()
    if _malloc_trim is None:
        return False
    if enable and not _state["registered"]:
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(_trim_after_compile)
        _state["registered"] = True
    _state["enabled"] = bool(enable)
    return _state["enabled"]

"""Where the notebooks run: library versions, the devices JAX sees, and the memory XLA keeps.

Each notebook's first cell prints :func:`summary` in Google Colab, so that a learner (and
whoever helps them) sees at once which jax, flax and ipywidgets are in use and whether a GPU
or TPU is doing the work.

Importing the parts of attnlab that compute with JAX (``attnlab.attention`` and ``attnlab.data``,
which the models, training and the notebooks all use; or ``import attnlab`` once jax is
imported) also calls :func:`tune_memory`: on Linux it sets glibc's allocator so that
the memory XLA's compiler frees goes back to the operating system (a training run's peak
memory falls by about a sixth) and the blocks a compiled program frees are reused by its next
call instead of being faulted in afresh (``benchmarks/NOTES.md``). Set the environment
variable ``ATTNLAB_TUNE_MEMORY=0`` before the import to leave the allocator alone. A bare
``import attnlab`` does not import jax (the command line checks its arguments first).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from importlib import metadata

__all__ = ["accelerator", "summary", "tune_memory", "tune_memory_unless_disabled"]

#: The event JAX records when XLA has finished compiling a program (jax >= 0.4; 0.7.2 included).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_libc = None  # glibc through ctypes, once looked up
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


def _glibc():
    """glibc as a ctypes library, or ``None`` on another C library (macOS, Windows, musl)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _trim_after_compile(event: str, duration: float, **kwargs) -> None:
    if _state["enabled"] and event == BACKEND_COMPILE_EVENT:
        _libc.malloc_trim(0)


#: glibc's ``mallopt`` parameters (malloc.h) and the values :func:`tune_memory` sets.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # blocks up to this come from the heap (glibc's own maximum)
TRIM_THRESHOLD_BYTES = 256 * 2**20  # free memory kept at a heap's top before giving it back


def tune_memory(enable: bool = True) -> bool:
    """Tune glibc's allocator for XLA on a CPU: less peak memory, fewer page faults.

    Two settings, both measured in ``benchmarks/NOTES.md`` ("Page faults"):

    - **After every XLA compilation, give the memory the compiler freed back to the OS.**
      Compiling a training step takes a few hundred MiB, which the compiler frees at the end;
      glibc keeps such memory for later use, so the program's first run would allocate its
      buffers on top of it, and the peak resident memory is the sum of both. A JAX monitoring
      listener calls glibc's ``malloc_trim(0)`` as each compilation ends, before the program
      first runs. For the ``default`` preset's training step on 2 CPU cores the peak resident
      memory fell from about 690 to 560 MiB; each call costs about a millisecond.
    - **Keep freed blocks for the next call.** A compiled program allocates its outputs and
      temporaries afresh on every call. With glibc's defaults, memory freed at the top of a
      thread's heap is handed back to the kernel soon, and the next call's first write to each
      4 KiB page then faults and is zeroed by the kernel: attention returning its
      ``(8, 4, 256, 256)`` weights took 3,000-5,000 such faults and 6-10 ms per call instead
      of 3.6 ms. ``mallopt`` keeps blocks up to 32 MiB in the heap
      (:data:`MMAP_THRESHOLD_BYTES`) and up to 256 MiB of free memory at a heap's top
      (:data:`TRIM_THRESHOLD_BYTES`); the compile-time ``malloc_trim`` still returns it all.

    Computations and their results are unchanged; only where memory comes from changes.
    Importing ``attnlab.attention`` or ``attnlab.data`` calls this (through
    :func:`tune_memory_unless_disabled`) unless the environment variable
    ``ATTNLAB_TUNE_MEMORY`` is ``0``. glibc's ``mallopt`` settings cannot be taken back within a process (``enable=False``
    stops only the compile-time release).

    Args:
      enable: ``True`` turns both on (the listener is registered once, however often this is
        called); ``False`` stops the release after compilations.

    Returns:
      Whether the release after compilations is on now: always ``False`` where the C library
      is not glibc (macOS, Windows, musl; Colab's preloaded tcmalloc replaces glibc's allocator
      and makes these calls harmless no-ops), whose allocators are left alone.
    """
    global _libc
    if _libc is None:
        _libc = _glibc()
    if _libc is None:
        return False
    if enable and not _state["registered"]:
        from jax import monitoring

        _libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        _libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        monitoring.register_event_duration_secs_listener(_trim_after_compile)
        _state["registered"] = True
    _state["enabled"] = bool(enable)
    return _state["enabled"]


def tune_memory_unless_disabled() -> bool:
    """:func:`tune_memory`, unless the environment variable ``ATTNLAB_TUNE_MEMORY`` is ``0``.

    Returns:
      Whether the release after compilations is on now.
    """
    if os.environ.get("ATTNLAB_TUNE_MEMORY", "1") == "0":
        return _state["enabled"]
    return tune_memory()

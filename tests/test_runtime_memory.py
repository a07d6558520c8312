"""runtime.release_memory_after_compiles: glibc's malloc_trim(0) after each XLA compilation."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from attnlab import runtime

ROOT = Path(__file__).resolve().parents[1]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")


@pytest.fixture
def trims(monkeypatch):
    """Record the calls to malloc_trim instead of making them; restore the state afterwards."""
    calls = []
    monkeypatch.setattr(runtime, "_malloc_trim", lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(runtime, "_state", dict(runtime._state))
    yield calls


_COMPILES = []  # every compilation JAX reports, counted by a listener of this test's own
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: _COMPILES.append(1)
    if event == runtime.BACKEND_COMPILE_EVENT else None)


def _compile_something_new(n: int, trims: list) -> int:
    """Compile and run a program of a new shape (jit caches by shape); the compilations made.
    ``trims`` is emptied once the input exists (making it compiles too)."""
    x = jnp.ones(n)
    jax.block_until_ready(x)
    trims.clear()
    before = len(_COMPILES)
    jax.block_until_ready(jax.jit(lambda x: jnp.sin(x) * 2 + 1)(x))
    made = len(_COMPILES) - before
    assert made >= 1
    return made


def _after_import(env: dict) -> dict:
    code = ("import json, attnlab\nfrom attnlab import runtime\n"
            "print(json.dumps(runtime._state))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_glibc
def test_importing_attnlab_turns_it_on_and_the_variable_leaves_it_off():
    assert _after_import({}) == {"registered": True, "enabled": True}
    assert _after_import({"ATTNLAB_RELEASE_MEMORY": "0"}) == {"registered": False, "enabled": False}


@needs_glibc
def test_each_compilation_trims_once_with_pad_zero(trims):
    assert runtime.release_memory_after_compiles() is True
    assert runtime.release_memory_after_compiles() is True  # registering twice: still one call
    made = _compile_something_new(1237, trims)
    assert trims == [0] * made
    made = _compile_something_new(1238, trims)
    assert trims == [0] * made


@needs_glibc
def test_running_a_compiled_program_again_does_not_trim(trims):
    runtime.release_memory_after_compiles()
    f, x = jax.jit(lambda x: x * 3), jax.block_until_ready(jnp.ones(1239))
    trims.clear()
    before = len(_COMPILES)
    jax.block_until_ready(f(x))
    assert len(_COMPILES) - before == 1 and trims == [0]
    for _ in range(3):
        jax.block_until_ready(f(x))
    assert trims == [0]


@needs_glibc
def test_turning_it_off_stops_the_calls_and_on_again_resumes_them(trims):
    runtime.release_memory_after_compiles()
    assert runtime.release_memory_after_compiles(False) is False
    _compile_something_new(1240, trims)
    assert trims == []
    assert runtime.release_memory_after_compiles(True) is True
    made = _compile_something_new(1241, trims)
    assert trims == [0] * made


def test_other_events_are_ignored(trims):
    runtime._state["enabled"] = True
    runtime._trim_after_compile("/jax/core/compile/jaxpr_trace_duration", 0.1)
    runtime._trim_after_compile("/jax/compilation_cache/cache_retrieval_time_sec", 0.1)
    assert trims == []
    runtime._trim_after_compile(runtime.BACKEND_COMPILE_EVENT, 0.1, fun_name="f")
    assert trims == [0]


def test_the_event_name_is_the_one_jax_records():
    from jax._src import dispatch

    assert runtime.BACKEND_COMPILE_EVENT == dispatch.BACKEND_COMPILE_EVENT


def test_another_c_library_is_left_alone(monkeypatch):
    monkeypatch.setattr(runtime, "_malloc_trim", None)
    monkeypatch.setattr(runtime, "_state", {"registered": False, "enabled": False})
    monkeypatch.setattr(runtime.platform, "libc_ver", lambda: ("", ""))
    assert runtime._glibc_malloc_trim() is None
    assert runtime.release_memory_after_compiles() is False
    assert runtime._state == {"registered": False, "enabled": False}


@needs_glibc
def test_the_real_malloc_trim_is_found_and_callable():
    trim = runtime._glibc_malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was released; 0: there was none to release

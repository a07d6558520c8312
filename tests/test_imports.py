"""Importing attnlab stays light: the heavy optional libraries load only when a feature needs them.

A learner's first cell imports attnlab; matplotlib, ipywidgets, tokenizers and the Hugging Face
Hub client must not come with it (nor with the math modules the CLI and the benchmarks use).
Each check runs in a fresh interpreter, since this test process may have imported them already.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "ipywidgets", "tokenizers", "huggingface_hub")
LIGHT_MODULES = (
    "attnlab", "attnlab.attention", "attnlab.gpt", "attnlab.train", "attnlab.sampling",
    "attnlab.data", "attnlab.checkpoint", "attnlab.presets", "attnlab.positional",
    "attnlab.tokenization", "attnlab.hub", "attnlab.finetune", "attnlab.rnn",
    "attnlab.pretrained", "attnlab.cli", "attnlab.runtime", "attnlab.checks",
    "attnlab.exercises", "attnlab.viz",
)


def heavy_after_import(modules: tuple[str, ...]) -> list[str]:
    """The HEAVY libraries in ``sys.modules`` of a fresh Python after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps([h for h in {list(HEAVY)!r} if h in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_attnlab_loads_none_of_the_heavy_libraries():
    assert heavy_after_import(("attnlab",)) == []


def test_the_math_and_tool_modules_load_none_of_the_heavy_libraries():
    assert heavy_after_import(LIGHT_MODULES) == []


@pytest.mark.parametrize("module, library", [("attnlab.quiz", "ipywidgets")])
def test_the_check_can_fail(module, library):
    # The interactive modules do need a heavy library: this is the check seeing one.
    assert library in heavy_after_import((module,))

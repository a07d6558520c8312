"""Colab: one repository URL everywhere, and a setup cell that installs and reports."""

import importlib.util
import json
import sys
import types
from pathlib import Path

import jax
import pytest

from attnlab import runtime

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sync_colab", ROOT / "ci" / "sync_colab.py")
sync_colab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_colab)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_badges_and_setup_cells_follow_the_url_in_pyproject():
    stale = sync_colab.sync(check=True)
    assert stale == [], f"run `python ci/sync_colab.py` to update: {stale}"


def test_readme_lists_every_notebook_with_its_badge():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    repo = sync_colab.repository()
    for path in NOTEBOOKS:
        assert f"](notebooks/{path.name})" in readme, f"README does not link {path.name}"
        assert sync_colab.badge(repo, path.name) in readme, f"README lacks {path.name}'s badge"


def _setup_source(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    tagged = [c for c in cells if "colab-setup" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is next(c for c in cells if c["cell_type"] == "code"), (
        f"{path.name}: the first code cell, and only it, must be tagged colab-setup"
    )
    return "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_does_nothing_outside_colab(path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(_setup_source(path), {})  # no get_ipython here: calling it would raise NameError


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_in_colab_installs_from_the_repository_and_reports(path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    calls = []

    class Shell:
        def run_line_magic(self, name, line):
            calls.append((name, line))

    exec(_setup_source(path), {"get_ipython": Shell})
    repo = sync_colab.repository()
    assert calls == [("pip", f'install -q "attnlab @ git+https://github.com/{repo}"')]
    out = capsys.readouterr().out
    assert f"jax {jax.__version__}" in out and "ipywidgets" in out and "devices:" in out


class FakeDevice:
    def __init__(self, platform, name):
        self.platform, self.name = platform, name

    def __str__(self):
        return self.name


def test_summary_says_cpu_only_when_there_is_no_accelerator():
    text = runtime.summary([FakeDevice("cpu", "TFRT_CPU_0")])
    assert "devices: 1 × cpu (TFRT_CPU_0)" in text
    assert "No GPU or TPU" in text
    assert runtime.accelerator([FakeDevice("cpu", "c")]) is None


def test_summary_names_a_gpu_or_tpu():
    gpus = [FakeDevice("gpu", f"cuda:{i}") for i in range(4)]
    text = runtime.summary(gpus)
    assert "4 × gpu (cuda:0, cuda:1, ...)" in text and "Using the GPU" in text
    assert runtime.accelerator([FakeDevice("tpu", "t")]) == "tpu"
    assert runtime.accelerator([FakeDevice("cuda", "c")]) == "gpu"


def test_summary_of_this_machine_lists_versions_and_devices():
    text = runtime.summary()
    assert f"jax {jax.__version__}" in text
    assert f"{len(jax.devices())} × {jax.devices()[0].platform}" in text


@pytest.mark.skipif(
    "ATTNLAB_COLAB_PINS" not in __import__("os").environ,
    reason="runs in `make test-colab`, inside the environment that holds Colab's pins",
)
def test_the_notebooks_install_line_changes_no_colab_pin(tmp_path):
    """pip --dry-run of exactly the setup cell's install line (the git URL pointed at this
    checkout) would install attnlab and leave every pinned version alone."""
    import os
    import re
    import subprocess

    line = re.search(r"'install -q (\"attnlab @ [^\"]+\")'", _setup_source(NOTEBOOKS[0])).group(1)
    requirement = re.sub(r"git\+https://github\.com/\S+?(?=\")", ROOT.as_uri(), line).strip('"')
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--dry-run", "--report", str(report),
         requirement], check=True,
    )
    would_install = {item["metadata"]["name"].lower().replace("_", "-")
                     for item in json.loads(report.read_text())["install"]}
    pins = {}
    for raw in Path(os.environ["ATTNLAB_COLAB_PINS"]).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==", raw.split("#", 1)[0].strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = raw
    assert "attnlab" in would_install
    assert not would_install & set(pins), f"would change Colab pins: {would_install & set(pins)}"

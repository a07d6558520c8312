"""The README's layout and the package docstring name every module of attnlab."""

import pkgutil
import re
from pathlib import Path

import attnlab

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(attnlab.__path__) if not m.name.startswith("_")
)


def test_package_docstring_names_every_module():
    named = set(re.findall(r":mod:`attnlab\.(\w+)`", attnlab.__doc__))
    assert named == set(MODULES), f"missing {set(MODULES) - named}, stale {named - set(MODULES)}"


def test_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    block = layout[layout.index("attnlab/"):layout.index("notebooks/")]
    named = set(re.findall(r"[a-z_]+", block.split("idea:", 1)[1]))
    assert set(MODULES) <= named, f"README layout lacks {set(MODULES) - named}"


def test_no_file_keeps_a_merge_conflict_marker():
    markers = ("<<<<<<< ", ">>>>>>> ")
    found = []
    for pattern in ("*.md", "*.toml", "Makefile", "attnlab/**/*.py", "tests/*.py", "benchmarks/*.py",
                    "ci/*", "notebooks/*.ipynb"):
        for path in ROOT.glob(pattern):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.lstrip(' "').startswith(markers):
                    found.append(f"{path.relative_to(ROOT)}:{number}")
    assert not found, f"merge conflict markers left in {found}"

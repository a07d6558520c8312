"""Write the repository URL from pyproject.toml into every Colab badge and Colab setup cell.

The URL lives in one place, ``[project.urls] Repository`` in pyproject.toml. This script
rewrites, from it, the Open-in-Colab badges in README.md and in each notebook's first cell, and
each notebook's code cell tagged ``colab-setup``. ``--check`` changes nothing and exits 1 when
anything is out of date (tests/test_colab.py runs it).

Usage: python ci/sync_colab.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BADGE = re.compile(
    r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/[^)]*/notebooks/([\w.-]+\.ipynb)\)"
)


def repository() -> str:
    """``owner/name`` of the GitHub repository named in pyproject.toml."""
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", urls["Repository"])
    if not match:
        raise SystemExit(f"[project.urls] Repository must be a GitHub URL; got {urls['Repository']}")
    return match.group(1)


def badge(repo: str, notebook: str) -> str:
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{notebook})")


def setup_cell(repo: str) -> str:
    """The source of every notebook's ``colab-setup`` cell."""
    return (
        "import sys\n"
        "\n"
        "# Only in Google Colab: install attnlab (Colab's own jax, flax and ipywidgets stay as they\n"
        "# are), then say which versions and devices this runtime has. Locally this does nothing.\n"
        'if "google.colab" in sys.modules:\n'
        '    get_ipython().run_line_magic("pip", '
        f"'install -q \"attnlab @ git+https://github.com/{repo}\"')\n"
        "    from attnlab.runtime import summary\n"
        "\n"
        "    print(summary())"
    )


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def sync(check: bool) -> list[str]:
    """Rewrite (or, with ``check``, only list) the files whose badge or setup cell is stale."""
    repo, stale = repository(), []
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = BADGE.sub(lambda m: badge(repo, m.group(1)), text)
    if new != text:
        stale.append("README.md")
        if not check:
            readme.write_text(new, encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        first = nb["cells"][0]
        fixed = BADGE.sub(lambda m, p=path: badge(repo, p.name), _source(first))
        if badge(repo, path.name) not in fixed:
            stale.append(f"{path.name}: first cell has no Colab badge")
            continue
        for cell in nb["cells"]:
            want = None
            if cell is first:
                want = fixed
            elif "colab-setup" in cell.get("metadata", {}).get("tags", []):
                want = setup_cell(repo)
            if want is not None and _source(cell) != want:
                cell["source"] = want.splitlines(keepends=True)
                changed = True
        if not any("colab-setup" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
            stale.append(f"{path.name}: no code cell tagged colab-setup")
            continue
        if changed:
            stale.append(path.name)
            if not check:
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n",
                                encoding="utf-8")
    return stale


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    stale = sync(check)
    for item in stale:
        print(("out of date: " if check else "updated: ") + item)
    sys.exit(1 if check and stale else 0)

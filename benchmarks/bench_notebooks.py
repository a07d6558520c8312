"""Wall time of each notebook under nbmake, as ``make test`` runs them.

Every notebook runs in its own ``pytest --nbmake`` process with ``ATTNLAB_FAST=1`` and
``ATTNLAB_OFFLINE=1`` (the settings of ``make test``), one after another; the figure is that
process's wall time, kernel start and Python imports included. ``--full 07,09`` also runs those
notebooks without ``ATTNLAB_FAST`` (the learner's full-quality run; slow). Each notebook runs
once: this is a budget check, not a comparison, so there is no reference and no alternation.
The CPU seconds of the pytest process and its kernel (all threads) are reported too: on a
machine shared with other jobs they change far less than the wall time.

Targets (issue #11): every notebook ≤ 90 s in fast mode, all of them together ≤ 10 minutes.
The table marks a notebook over 90 s or one that failed; the last line reads like
``notebooks: 10/10 passed, 10/10 within 90 s (ATTNLAB_FAST=1), total 412 s (target <= 600 s);
slowest 07_train_mini_gpt 63 s``.
Run ``python benchmarks/bench_notebooks.py [--only 04,07] [--full 07,09]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's attnlab for the JSON writer
import harness  # noqa: E402  (benchmarks/ is on the path: this script's folder)

NOTEBOOKS = ROOT / "notebooks"
FAST_TARGET_S, TOTAL_TARGET_S = 90.0, 600.0


def run_notebook(path: Path, fast: bool, timeout: int) -> dict:
    """Run one notebook under nbmake in a fresh process: wall seconds, passed, last output line."""
    env = {**os.environ, "ATTNLAB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("ATTNLAB_FAST", None)
    if fast:
        env["ATTNLAB_FAST"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
               f"--nbmake-timeout={timeout}", str(path.relative_to(ROOT))]
    load = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # pytest and its kernel, all threads
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    return {"notebook": path.stem, "mode": "fast" if fast else "full", "wall_s": wall, "cpu_s": cpu,
            "passed": done.returncode == 0, "load_before": load, "pytest": tail}


def pick(names: str | None) -> list[Path]:
    """Notebooks whose file name starts with one of the comma-separated prefixes (all: None)."""
    every = sorted(NOTEBOOKS.glob("*.ipynb"))
    if names is None:
        return every
    chosen = [p for p in every if any(p.name.startswith(n) for n in names.split(","))]
    if not chosen:
        raise SystemExit(f"no notebook in {NOTEBOOKS} starts with any of {names!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated prefixes, e.g. 04,07 (default: all)")
    parser.add_argument("--full", default="",
                        help="also run these in full mode, without ATTNLAB_FAST (e.g. 07,09)")
    parser.add_argument("--timeout", type=int, default=1800, help="nbmake's per-cell timeout, s")
    parser.add_argument("--json", type=Path, help="default benchmarks/results/bench_notebooks.json")
    args = parser.parse_args(argv)
    machine = harness.machine_info(["jax", "jaxlib", "flax", "nbmake", "matplotlib", "ipywidgets"])
    runs = [(p, True) for p in pick(args.only)]
    runs += [(p, False) for p in (pick(args.full) if args.full else [])]
    print(f"bench_notebooks: {len(runs)} runs; {machine['cpu_count']} CPUs, load average "
          f"{machine['load_average'][0]:.1f}", flush=True)
    rows = []
    for path, fast in runs:
        rows.append(run_notebook(path, fast, args.timeout))
        r = rows[-1]
        print(f"  {r['notebook']} ({r['mode']}): {r['wall_s']:.1f} s, "
              f"{'passed' if r['passed'] else 'FAILED'} (load {r['load_before']:.1f})", flush=True)
    print(f"\n{'notebook':<32} {'mode':<5} {'wall s':>7} {'CPU s':>7} {'load':>5}  result")
    for r in rows:
        flag = "" if r["passed"] else "FAILED"
        if r["mode"] == "fast" and r["wall_s"] > FAST_TARGET_S:
            flag = (flag + " over 90 s").strip()
        print(f"{r['notebook']:<32} {r['mode']:<5} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} "
              f"{r['load_before']:>5.1f}  "
              f"{flag or 'ok'}")
    fast_rows = [r for r in rows if r["mode"] == "fast"]
    total = sum(r["wall_s"] for r in fast_rows)
    warning = harness.busy_warning(machine, "the wall times are longer than on a quiet machine")
    notes = [warning] if warning else []
    for note in notes:
        print(note)
    passed = sum(r["passed"] for r in fast_rows)
    within = sum(r["wall_s"] <= FAST_TARGET_S and r["passed"] for r in fast_rows)
    slowest = max(fast_rows, key=lambda r: r["wall_s"])
    headline = (f"notebooks: {passed}/{len(fast_rows)} passed, {within}/{len(fast_rows)} within "
                f"{FAST_TARGET_S:.0f} s (ATTNLAB_FAST=1), total {total:.0f} s (target <= "
                f"{TOTAL_TARGET_S:.0f} s); slowest {slowest['notebook']} {slowest['wall_s']:.0f} s")
    path = args.json or harness.RESULTS / "bench_notebooks.json"
    data = {"benchmark": "bench_notebooks", "headline": headline, "total_fast_s": total,
            "rows": rows, "machine": machine, "settings": {**vars(args), "json": str(args.json)},
            "notes": notes, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    harness.write_results(path, data, headline)
    return 0 if passed == len(fast_rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Write ``benchmarks/results/SUMMARY.md`` from the JSON files the benchmarks wrote there.

One section per ``bench_*.json``: its headline, when and under what load it ran, and its table.
``make bench`` runs this last. Run ``python benchmarks/summary.py [--results DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _machine(data: dict) -> str:
    m = data.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)
    load = m.get("load_average") or [float("nan")]
    return (f"{data.get('timestamp', '?')}; {m.get('cpu_count', '?')} CPUs, load average "
            f"{load[0]:.1f} before the run; {versions}")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _faults(r: dict) -> str:
    """Median minor page faults per step (results written before they were counted: "-")."""
    return f"{r['minor_faults_per_step']:.0f}" if "minor_faults_per_step" in r else "-"


def section(data: dict) -> list[str]:
    """The Markdown lines for one benchmark's JSON."""
    name = data.get("benchmark", "?")
    lines = [f"## {name}", "", f"`{data.get('headline', '(no headline)')}`", "",
             _machine(data), ""]
    if name == "bench_notebooks":
        rows = [[r["notebook"], r["mode"], f"{r['wall_s']:.1f}",
                 f"{r['cpu_s']:.1f}" if "cpu_s" in r else "-", f"{r['load_before']:.1f}",
                 "passed" if r["passed"] else "FAILED"] for r in data["rows"]]
        lines += _table(["notebook", "mode", "wall s", "CPU s", "load before", "result"], rows)
    elif name == "bench_widget":
        rows = [[r["control"], r["n"], f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}",
                 f"{r['median_cpu_ms']:.1f}"] for r in data["rows"]]
        lines += _table(["control", "moves", "median ms", "p90 ms", "CPU ms"], rows)
    elif name == "bench_attention":
        rows = [[r["name"], f"{r['us_per_call']:.0f}",
                 f"{1e6 * r['min_step_s']:.0f}-{1e6 * r['max_step_s']:.0f}", f"{r['gflops']:.1f}",
                 f"{r['ratio_vs_jax_dpa']:.2f}x" if r.get("ratio_vs_jax_dpa") else "?",
                 _faults(r)] for r in data["results"]]
        lines += _table(["config", "us/call", "min-max", "GFLOP/s", "speed vs jax-dpa",
                         "faults/call"], rows)
    elif name == "bench_gpu":
        rows = [[r["name"], f"{r['tok_s']:.0f}", f"{r['min_tok_s']:.0f}-{r['max_tok_s']:.0f}",
                 f"{1e3 * r['median_step_s']:.1f}", f"{r['first_step_s']:.2f}",
                 f"{r['mfu_vs_measured_matmul']:.0%}",
                 f"{r['mfu_vs_vendor_peak']:.0%}" if r.get("mfu_vs_vendor_peak") else "-",
                 f"{r['peak_device_mib']:.0f}" if r.get("peak_device_mib") else "-"]
                for r in data["results"]]
        lines += _table(["config", "tok/s", "min-max", "ms/step", "1st step s",
                         "MFU (measured matmul)", "MFU (data-sheet peak)", "device MiB"], rows)
    else:  # the harness's report: a rate per configuration
        unit = data.get("unit", "/s")
        rows = []
        for r in data.get("results", []):
            spread = f"{data['per_step'] / r['max_step_s']:.0f}-{data['per_step'] / r['min_step_s']:.0f}"
            extra = f"{r['mfu']:.0%}" if "mfu" in r else ""
            rows.append([r["name"], f"{r['rate']:.0f}", spread, f"{1e3 * r['median_step_s']:.1f}",
                         f"{r['first_step_s']:.2f}", f"{r.get('peak_rss_mib') or 0:.0f}",
                         _faults(r), extra])
        lines += _table(["config", unit, "min-max", "ms/step", "1st step s", "peak RSS MiB",
                         "faults/step", "MFU"], rows)
    notes = data.get("notes") or []
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    files = sorted(args.results.glob("bench_*.json"))
    if not files:
        print(f"no bench_*.json in {args.results}: run the benchmarks first", file=sys.stderr)
        return 1
    data = [json.loads(f.read_text()) for f in files]
    lines = ["# Benchmark summary", "",
             "Written by `benchmarks/summary.py` from `benchmarks/results/*.json` (`make bench`). "
             "Ratios are attnlab's speed over the reference's, measured in the same run; they "
             "hold for that machine and load only.", "", "## Headlines", ""]
    lines += [f"- `{d.get('headline', '?')}`" for d in data] + [""]
    for d in data:
        lines += section(d)
    out = args.results / "SUMMARY.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

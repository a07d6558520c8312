"""The shared benchmark harness: each configuration in its own process, timed windows alternated.

A configuration is a module-level ``setup(**kwargs)`` returning ``(run, info)``: ``run(n)`` does
``n`` steps and returns when their work is done (``block_until_ready``, ``.item()``); ``info`` is
a JSON-able dict. :func:`measure` spawns one process per configuration (own threads, allocator,
peak memory) and sets them up one after another (first step timed, compilation included, then
``warmup`` untimed steps); then their timed windows run in turn, A B C A B C ..., so background
load hits all alike. A window is an untimed lead-in step and ``steps`` timed steps; the figure
is the median window, with the fastest and slowest. Each window also counts the process's minor
page faults (``window_minor_faults_per_step``): the kernel zeroing fresh memory pages, which is
where much of a CPU step's time can go when the allocator hands back new memory each call
(``NOTES.md``). :func:`report` prints the table, writes the JSON atomically and prints the
headline ratio last.
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

RESULTS = Path(__file__).resolve().parent / "results"


class Config(NamedTuple):
    """One configuration: ``setup(**kwargs)`` runs in its own process, returns ``(run, info)``."""

    name: str
    setup: Callable[..., tuple[Callable[[int], Any], dict]]
    kwargs: dict


def parse_args(parser: argparse.ArgumentParser, argv=None, *, warmup=5, windows=7, steps=10):
    """Add the options every benchmark shares, parse ``argv``, apply ``--quick``, check."""
    add = parser.add_argument
    add("--warmup", type=int, default=warmup, help=f"untimed steps after the first (default {warmup})")
    add("--windows", type=int, default=windows, help=f"timed windows per configuration (default {windows})")
    add("--steps", type=int, default=steps, help=f"timed steps per window (default {steps})")
    add("--quick", action="store_true", help="a run of about a minute: --warmup 2 --windows 3 --steps 4")
    add("--json", type=Path, help="where to write the results (default benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.windows, args.steps = 2, 3, 4
    if args.warmup < 0 or args.windows < 1 or args.steps < 1:
        parser.error(f"need --warmup >= 0, --windows >= 1 and --steps >= 1; got {args.warmup}, "
                     f"{args.windows} and {args.steps}")
    return args


def _child(conn, config: Config, warmup: int) -> None:
    """Set up one configuration, then answer: n -> seconds for n timed steps; None -> stop."""
    try:
        start = time.perf_counter()
        run, info = config.setup(**config.kwargs)
        t0 = time.perf_counter()
        run(1)
        first = time.perf_counter() - t0
        if warmup:
            run(warmup)
        conn.send({"info": info, "first_step_s": first, "setup_s": time.perf_counter() - start})
        while (n := conn.recv()) is not None:
            run(1)  # untimed lead-in: wakes this process's threads after another one ran
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            run(n)
            seconds = time.perf_counter() - t0
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            conn.send((seconds, faults / n))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; bytes on macOS
        conn.send({"peak_rss_mib": rss / (2**20 if sys.platform == "darwin" else 2**10)})
    except Exception as e:
        traceback.print_exc()
        conn.send({"error": f"{type(e).__name__}: {e}".splitlines()[0]})


def measure(configs: list[Config], *, warmup: int, windows: int, steps: int,
            timeout: float = 600.0) -> tuple[list[dict], list[str]]:
    """Time every configuration: ``(results in the order given, notes)``. One that fails or does
    not answer within ``timeout`` s is left out with a note; the first (the subject) raises."""
    ctx = multiprocessing.get_context("spawn")
    procs, conns, results, notes = [], {}, {}, []

    def ask(i: int, *message):  # send (if given) and wait for the answer; None if i failed
        try:
            if message:
                conns[i].send(message[0])
            if not conns[i].poll(timeout):
                raise RuntimeError(f"no answer within {timeout:.0f} s")
            answer = conns[i].recv()
            if isinstance(answer, dict) and "error" in answer:
                raise RuntimeError(answer["error"])
            return answer
        except (RuntimeError, EOFError, OSError) as e:
            why = e if isinstance(e, RuntimeError) else f"its process ended: {e!r}"
            if i == 0:
                raise RuntimeError(f"{configs[0].name} failed: {why}") from e
            notes.append(f"{configs[i].name}: left out ({why})")
            results.pop(i, None)
            conns.pop(i).close()
            procs[i].kill()

    try:
        for i, config in enumerate(configs):  # one after another: no two compile at once
            conns[i], child_end = ctx.Pipe()
            procs.append(ctx.Process(target=_child, args=(child_end, config, warmup)))
            procs[-1].start()
            child_end.close()
            if (ready := ask(i)) is not None:
                results[i] = {"name": config.name, **ready, "window_step_s": [],
                              "window_minor_faults_per_step": []}
                print(f"  {config.name}: ready in {ready['setup_s']:.1f} s "
                      f"(first step {ready['first_step_s']:.2f} s)", flush=True)
        for w in range(windows):
            order = list(results)
            for i in order[w % len(order):] + order[: w % len(order)]:  # rotate who goes first
                if (answer := ask(i, steps)) is not None:
                    seconds, faults = answer
                    results[i]["window_step_s"].append(seconds / steps)
                    results[i]["window_minor_faults_per_step"].append(faults)
        for i in list(results):
            if (end := ask(i, None)) is not None:
                results[i].update(end)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    for r in results.values():
        r["median_step_s"] = statistics.median(r["window_step_s"])
        r["min_step_s"], r["max_step_s"] = min(r["window_step_s"]), max(r["window_step_s"])
        r["minor_faults_per_step"] = statistics.median(r["window_minor_faults_per_step"])
    return list(results.values()), notes


def machine_info(packages: list[str]) -> dict:
    """CPU, OS, Python, load average now, and the versions of ``packages`` (None: missing)."""
    versions = {p: next((d.version for d in metadata.distributions(name=p)), None) for p in packages}
    return {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": list(os.getloadavg()), "versions": versions}


def _sig3(x: float) -> str:
    """Three significant figures, for the headline: 24137.2 -> "24100", 61.37 -> "61.4"."""
    return f"{float(f'{x:.3g}'):.0f}" if x >= 100 else f"{x:.3g}"


def report(benchmark: str, label: str, results: list[dict], *, per_step: float, unit: str,
           machine: dict, settings: dict, notes: list[str], json_path: Path | None = None,
           no_reference: str = "no reference") -> str:
    """Print the table and notes, write the JSON, print the headline last and return it.

    Rate = ``per_step`` (one step's work in ``unit``: 2048 "tok") / median step time. The
    headline is the first result's rate over the second's (subject over reference: higher is
    better), ``label: 1.23x REF (SUBJ 24100 tok/s vs 19600 tok/s)``; alone: ``no_reference``.
    """
    for r in results:
        r["rate"] = per_step / r["median_step_s"]
    rate = f"{unit}/s"
    print(f"\n{'config':<20} {rate:>9} {'(min-max)':>15} {'ms/step':>8} {'1st step s':>10} "
          f"{'peak RSS MiB':>12} {'faults/step':>11}")
    for r in results:
        spread = f"({per_step / r['max_step_s']:.0f}-{per_step / r['min_step_s']:.0f})"
        rss = f"{r['peak_rss_mib']:.0f}" if r.get("peak_rss_mib") else "?"
        print(f"{r['name']:<20} {r['rate']:>9.0f} {spread:>15} {1e3 * r['median_step_s']:>8.1f} "
              f"{r['first_step_s']:>10.2f} {rss:>12} {r.get('minor_faults_per_step', 0):>11.0f}")
    warning = busy_warning(machine)
    if warning:
        notes.append(warning)
    for note in notes:
        print(note)
    subject, ratio = results[0], None
    if len(results) > 1:
        ref = results[1]
        ratio = subject["rate"] / ref["rate"]
        headline = (f"{label}: {ratio:.2f}x {ref['name']} ({subject['name']} "
                    f"{_sig3(subject['rate'])} {rate} vs {_sig3(ref['rate'])} {rate})")
    else:
        headline = f"{label}: {subject['name']} {_sig3(subject['rate'])} {rate} ({no_reference})"
    path = json_path or RESULTS / f"{benchmark}.json"
    data = {"benchmark": benchmark, "headline": headline, "ratio": ratio, "unit": rate,
            "per_step": per_step, "machine": machine, "settings": settings, "notes": notes,
            "results": results, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_results(path, data, headline)
    return headline


def busy_warning(machine: dict,
                 consequence: str = "the figures are noisy, rerun on a quiet machine") -> str | None:
    """A warning line when the load average before the run was at least half the CPU count."""
    cpus, load = machine["cpu_count"] or 1, machine["load_average"]
    if load and load[0] >= 0.5 * cpus:
        return (f"warning: the machine was busy (load average {load[0]:.1f} on {cpus} CPUs "
                f"before the run): {consequence}")
    return None


def write_results(path: Path, data: dict, headline: str) -> None:
    """Write ``data`` as JSON to ``path`` atomically, then print where, and the headline last."""
    from attnlab.checkpoint import atomic_write  # imports JAX, so only here (never in children)

    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
    print(f"wrote {path}")
    print(headline)

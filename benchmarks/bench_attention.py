"""Causal attention per call: attnlab's scaled_dot_product_attention against jax.nn's.

Shapes: B=8 sequences, H=4 heads, d_head 32, T = S = 256 and 1024 positions, float32, causal.
Every configuration is one jitted function of ``(q, k, v)`` (the causal mask is built inside,
as a GPT does), timed per call (each call waits for its result):

* ``attnlab``: ``scaled_dot_product_attention(q, k, v, causal_mask(T))`` keeping only the
  output (the weights are not returned from the jitted function, so XLA never writes them);
* ``attnlab+weights``: the same returning ``(output, weights)``, the ``(B, H, T, T)`` weights
  written to memory as the notebooks' heatmaps need them;
* ``jax-dpa``: ``jax.nn.dot_product_attention(q, k, v, is_causal=True)`` (the reference;
  ``implementation=None`` lets JAX choose, which on a CPU is its XLA path).

GFLOP/s counts the two matrix products over the full T x S square, 4·B·H·T²·d_head FLOPs per
call, which is what every implementation here computes (none skips the masked half). Each
length is measured on its own, with ``--steps`` calls per window at the longest length and
(T_max / T)² times as many at shorter ones, so that every window does the same work. Targets
(issue #11): attnlab ≥ 1/1.05 of jax-dpa's speed without weights and ≥ 1/1.3 with them.
The last line is the headline for the longer sequence.
Run ``python benchmarks/bench_attention.py [--quick]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmark this checkout's attnlab, even if another is installed
import harness  # noqa: E402  (benchmarks/ is on the path: this script's folder)

B, H, D_HEAD = 8, 4, 32
LENGTHS = (256, 1024)
TARGETS = {"attnlab": 1 / 1.05, "attnlab+weights": 1 / 1.3}  # speed ratio over jax-dpa, at least


def setup_attention(impl: str, T: int, seed: int):
    import jax
    import jax.numpy as jnp

    from attnlab.attention import causal_mask, scaled_dot_product_attention

    if impl == "attnlab":
        f = jax.jit(lambda q, k, v: scaled_dot_product_attention(q, k, v, causal_mask(T))[0])
    elif impl == "attnlab+weights":
        f = jax.jit(lambda q, k, v: scaled_dot_product_attention(q, k, v, causal_mask(T)))
    elif impl == "jax-dpa":
        f = jax.jit(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True))
    else:
        raise ValueError(f"impl must be attnlab, attnlab+weights or jax-dpa; got {impl!r}")
    keys = jax.random.split(jax.random.key(seed), 3)
    q, k, v = (jax.random.normal(key, (B, T, H, D_HEAD), jnp.float32) for key in keys)

    def run(n: int) -> None:
        for _ in range(n):
            jax.block_until_ready(f(q, k, v))

    return run, {"device": str(jax.devices()[0]), "shape": [B, T, H, D_HEAD]}


def flops_per_call(T: int) -> int:
    """q·kᵀ and weights·v over the full T x T square: 2 products x 2·B·H·T·T·d_head."""
    return 4 * B * H * T * T * D_HEAD


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="q, k, v (default 0)")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)),
                        help="sequence lengths T (default 256,1024)")
    args = harness.parse_args(parser, argv, warmup=3, windows=7, steps=10)
    lengths = [int(t) for t in args.lengths.split(",")]
    machine = harness.machine_info(["jax", "jaxlib", "numpy"])
    impls = ["attnlab", "jax-dpa", "attnlab+weights"]
    # Equal work per window: a call costs about T² (the (T, T) scores), so shorter sequences
    # get (T_max / T)² times the calls. A window of 10 calls at T=256 lasted 30 ms, and such short
    # windows spread by ±25% between runs on 2 cores (NOTES.md).
    steps = {T: max(1, round(args.steps * (max(lengths) / T) ** 2)) for T in lengths}
    print(f"bench_attention: B={B}, H={H}, d_head {D_HEAD}, T in {lengths}, float32, causal; "
          f"{args.warmup} warm-up calls, {args.windows} windows of "
          + ", ".join(f"{steps[T]} calls (T={T})" for T in lengths) + "; "
          f"{machine['cpu_count']} CPUs, load average {machine['load_average'][0]:.1f}",
          flush=True)
    results, notes = [], []
    for T in lengths:  # one measurement per length, each with its own window length
        configs = [harness.Config(f"{impl} T={T}", setup_attention,
                                  {"impl": impl, "T": T, "seed": args.seed}) for impl in impls]
        found, more = harness.measure(configs, warmup=args.warmup, windows=args.windows,
                                      steps=steps[T])
        results += found
        notes += more
    by_name = {r["name"]: r for r in results}
    print(f"\n{'config':<22} {'us/call':>10} {'(min-max)':>19} {'GFLOP/s':>8} "
          f"{'vs jax-dpa':>10} {'target':>7} {'1st call s':>10} {'faults/call':>11}")
    ratios = {}
    for T in lengths:
        ref = by_name.get(f"jax-dpa T={T}")
        for impl in impls:
            r = by_name.get(f"{impl} T={T}")
            if r is None:
                continue
            r["us_per_call"] = 1e6 * r["median_step_s"]
            r["gflops"] = flops_per_call(T) / r["median_step_s"] / 1e9
            ratio = ref["median_step_s"] / r["median_step_s"] if ref else None
            r["ratio_vs_jax_dpa"] = ratio
            ratios[(impl, T)] = ratio
            target = f">={TARGETS[impl]:.2f}" if impl in TARGETS else ""
            spread = f"({1e6 * r['min_step_s']:.0f}-{1e6 * r['max_step_s']:.0f})"
            shown = f"{ratio:.2f}x" if ratio else "?"
            print(f"{r['name']:<22} {r['us_per_call']:>10.0f} {spread:>19} {r['gflops']:>8.1f} "
                  f"{shown:>10} {target:>7} {r['first_step_s']:>10.2f} "
                  f"{r['minor_faults_per_step']:>11.0f}")
    for impl, target in TARGETS.items():
        for T in lengths:
            if ratios.get((impl, T)) is not None and ratios[(impl, T)] < target:
                notes.append(f"{impl} T={T}: {ratios[(impl, T)]:.2f}x jax-dpa misses the target "
                             f"(>= {target:.2f}x, i.e. at most {1 / target:.2f} times its time)")
    warning = harness.busy_warning(machine)
    if warning:
        notes.append(warning)
    for note in notes:
        print(note)
    T = max(lengths)
    main_r, ref_r = by_name[f"attnlab T={T}"], by_name.get(f"jax-dpa T={T}")
    if ref_r is None:
        headline = f"attention: attnlab {main_r['us_per_call']:.0f} us/call at T={T} (no reference)"
    else:
        with_w = ratios.get(("attnlab+weights", T))
        headline = (f"attention: {ratios[('attnlab', T)]:.2f}x jax-dpa without weights, "
                    + (f"{with_w:.2f}x with weights " if with_w else "")
                    + f"(T={T}; attnlab {main_r['us_per_call']:.0f} us vs "
                    f"{ref_r['us_per_call']:.0f} us per call)")
    path = args.json or harness.RESULTS / "bench_attention.json"
    data = {"benchmark": "bench_attention", "headline": headline, "unit": "us/call",
            "ratios": {f"{impl} T={T}": r for (impl, T), r in ratios.items()},
            "machine": machine, "settings": {**vars(args), "json": str(args.json), "B": B,
                                             "H": H, "d_head": D_HEAD, "dtype": "float32",
                                             "calls_per_window": steps},
            "notes": notes, "results": results, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    harness.write_results(path, data, headline)
    return 0


if __name__ == "__main__":
    sys.exit(main())

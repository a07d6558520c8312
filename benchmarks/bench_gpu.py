"""Training a GPT-2-small-sized model in bfloat16 on a GPU: tokens per second and MFU.

The GPU check of issue #11, as one prepared script. The model is GPT-2 small's shape (vocabulary
50,257, context 1,024, 12 layers, 12 heads, d_model 768, d_ff 3,072; 124 M parameters) with
``GPTConfig(matmul_dtype="bfloat16", attention="fused")``: every dense layer multiplies bfloat16
copies and sums in float32, and attention goes through ``jax.nn.dot_product_attention`` with
the implementation :func:`attnlab.attention.attention_implementation` picks: cuDNN's fused
kernel on an NVIDIA GPU, XLA on a CPU (the same code, nothing to switch). Random tokens from a
fixed seed, AdamW, one compiled :func:`attnlab.train.train_step` per step.

Measured, after warm-up: tokens per second (median of windows, with the fastest and slowest),
time to the first step (compilation included), the device's peak memory where JAX reports it,
and model-FLOP utilisation: ``GPTConfig.flops_per_token`` x tokens/s against (a) a large
bfloat16 matrix product timed in the same run and (b) the vendor's dense bfloat16 peak for
known GPUs. ``--compare`` (the default) also trains with ``attention="attnlab"`` (the
step-by-step attention that writes the ``(B, H, T, T)`` weights to memory), so the fused
kernel's gain is a ratio from the same run. The last line is the headline.

Run on a GPU machine (with JAX's CUDA build): ``python benchmarks/bench_gpu.py``. ``--preset
tiny`` runs a small model in seconds on any machine (the test suite does, on the CPU, to keep
the script working). Results go to ``benchmarks/results/bench_gpu.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmark this checkout's attnlab, even if another is installed
import harness  # noqa: E402  (benchmarks/ is on the path: this script's folder)

PRESETS = {  # GPTConfig sizes and batch size
    "gpt2-small": dict(model=dict(vocab_size=50257, context_length=1024, n_layers=12, n_heads=12,
                                  d_model=768, d_ff=3072), batch_size=8),
    "tiny": dict(model=dict(vocab_size=97, context_length=64, n_layers=2, n_heads=4, d_model=64,
                            d_ff=256), batch_size=4),
}
#: Dense bfloat16 peak TFLOP/s by device kind (vendor data sheets, without sparsity).
VENDOR_PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0,
                      "T4": 65.0, "V100": 125.0}


def vendor_peak(device_kind: str) -> float | None:
    """The data-sheet dense bf16 TFLOP/s for a device kind such as ``"NVIDIA H100 80GB HBM3"``."""
    for name, tflops in VENDOR_PEAK_TFLOPS.items():
        if name in device_kind.split() or name in device_kind.replace("-", " ").split():
            return tflops
    return None


def matmul_tflops(n: int, repeats: int = 5) -> float:
    """Median TFLOP/s of an n x n bfloat16 matrix product summed in float32, on the default device."""
    import jax
    import jax.numpy as jnp

    a, b = (jax.random.normal(k, (n, n), jnp.bfloat16) for k in jax.random.split(jax.random.key(0)))
    f = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, b))
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e12


def train_rate(model: dict, batch_size: int, attention: str, *, warmup: int, windows: int,
               steps: int, seed: int = 0) -> dict:
    """Train ``model`` with ``attention`` on random tokens; its timings and loss."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from attnlab.gpt import GPT, GPTConfig
    from attnlab.train import TrainConfig, make_optimizer, train_step

    config = GPTConfig(**model, matmul_dtype="bfloat16", attention=attention)
    gpt = GPT(config, rngs=nnx.Rngs(seed))
    optimizer = make_optimizer(gpt, TrainConfig(batch_size=batch_size, learning_rate=3e-4,
                                                warmup_steps=10))
    T, V = config.context_length, config.vocab_size
    tokens = np.random.default_rng(seed).integers(0, V, (batch_size, T + 1), dtype=np.int32)
    x, y = jnp.asarray(tokens[:, :-1]), jnp.asarray(tokens[:, 1:])

    def run(n: int) -> float:
        for _ in range(n):
            loss = train_step(gpt, optimizer, x, y)
        return float(jax.block_until_ready(loss))

    t0 = time.perf_counter()
    first_loss = run(1)
    first = time.perf_counter() - t0
    run(warmup)
    window_s = []
    for _ in range(windows):
        t0 = time.perf_counter()
        last_loss = run(steps)
        window_s.append((time.perf_counter() - t0) / steps)
    step_s = statistics.median(window_s)
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)() or {}
    tokens_per_step = batch_size * T
    return {"name": f"attention={attention}", "attention": attention,
            "params": config.num_params(), "flops_per_token": config.flops_per_token(),
            "tok_s": tokens_per_step / step_s, "median_step_s": step_s,
            "min_tok_s": tokens_per_step / max(window_s), "max_tok_s": tokens_per_step / min(window_s),
            "first_step_s": first, "first_loss": first_loss, "last_loss": last_loss,
            "peak_device_mib": stats.get("peak_bytes_in_use", 0) / 2**20 or None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpt2-small")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    parser.add_argument("--no-compare", dest="compare", action="store_false",
                        help="skip the run with attnlab's step-by-step attention")
    parser.add_argument("--matmul-n", type=int, default=8192,
                        help="size of the bf16 matrix product MFU is measured against (default 8192)")
    args = harness.parse_args(parser, argv, warmup=3, windows=5, steps=10)
    import jax

    from attnlab.attention import attention_implementation

    preset = PRESETS[args.preset]
    batch_size = preset["batch_size"] if args.batch_size is None else args.batch_size
    if batch_size < 1:
        parser.error(f"--batch-size must be >= 1; got {batch_size}")
    device = jax.devices()[0]
    model = preset["model"]
    implementation = attention_implementation(d_head=model["d_model"] // model["n_heads"])
    machine = harness.machine_info(["jax", "jaxlib", "flax", "optax", "jax-cuda12-plugin",
                                    "jax-cuda13-plugin"])
    machine["device"] = f"{device.platform}: {device.device_kind}"
    print(f"bench_gpu: preset {args.preset}, batch {batch_size}, bfloat16 matmuls; device "
          f"{machine['device']}; fused attention takes jax.nn's {implementation!r} path", flush=True)
    kw = dict(warmup=args.warmup, windows=args.windows, steps=args.steps)
    results = [train_rate(preset["model"], batch_size, "fused", **kw)]
    if args.compare:
        results.append(train_rate(preset["model"], batch_size, "attnlab", **kw))
    measured = matmul_tflops(args.matmul_n)
    peak = vendor_peak(device.device_kind)
    print(f"\n{'config':<20} {'tok/s':>10} {'(min-max)':>21} {'ms/step':>8} {'1st step s':>10} "
          f"{'MFU meas.':>9} {'MFU peak':>8} {'device MiB':>10} {'loss':>13}")
    for r in results:
        achieved = r["flops_per_token"] * r["tok_s"] / 1e12
        r["achieved_tflops"] = achieved
        r["mfu_vs_measured_matmul"] = achieved / measured
        r["mfu_vs_vendor_peak"] = achieved / peak if peak else None
        vendor = f"{r['mfu_vs_vendor_peak']:.0%}" if peak else "-"
        mib = f"{r['peak_device_mib']:.0f}" if r["peak_device_mib"] else "-"
        print(f"{r['name']:<20} {r['tok_s']:>10.0f} ({r['min_tok_s']:.0f}-{r['max_tok_s']:.0f})"
              f"{'':>3} {1e3 * r['median_step_s']:>8.1f} {r['first_step_s']:>10.2f} "
              f"{r['mfu_vs_measured_matmul']:>9.0%} {vendor:>8} {mib:>10} "
              f"{r['first_loss']:.2f}->{r['last_loss']:.2f}")
    fused = results[0]
    notes = [f"{fused['params']:,} parameters, {fused['flops_per_token']:,} FLOP/token "
             "(GPTConfig.flops_per_token)",
             f"bf16 {args.matmul_n}^2 matrix product: {measured:.1f} TFLOP/s measured"
             + (f"; data-sheet peak {peak:.0f} TFLOP/s" if peak else "; data-sheet peak unknown")]
    if device.platform == "cpu":
        notes.append("on a CPU: a check that the script runs, not a GPU figure")
    for note in notes:
        print(note)
    ratio = (f"; {fused['tok_s'] / results[1]['tok_s']:.2f}x attnlab's step-by-step attention"
             if args.compare else "")
    mfu = (f"MFU {fused['mfu_vs_vendor_peak']:.0%} of peak" if peak
           else f"MFU {fused['mfu_vs_measured_matmul']:.0%} of the measured matmul rate")
    headline = (f"gpu: {args.preset} bfloat16 training {harness._sig3(fused['tok_s'])} tok/s, "
                f"{mfu} ({implementation} attention{ratio})")
    path = args.json or harness.RESULTS / "bench_gpu.json"
    harness.write_results(path, {
        "benchmark": "bench_gpu", "headline": headline, "unit": "tok/s", "machine": machine,
        "settings": {**vars(args), "json": str(args.json), "batch_size": batch_size,
                     "model": preset["model"], "implementation": implementation},
        "measured_matmul_tflops": measured, "vendor_peak_tflops": peak, "notes": notes,
        "results": results, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, headline)
    return 0


if __name__ == "__main__":
    sys.exit(main())

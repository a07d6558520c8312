"""Training tokens per second: attnlab's train step against Hugging Face GPT-2 in PyTorch.

The reference configuration is the ``default`` preset (the notebooks' mini GPT) with the
notebooks' vocabulary (``CharTokenizer.ascii()``, 96 symbols): context 128, 4 layers, 4 heads,
d_model 128, d_ff 512, dropout 0, float32, a batch of 16 x 128 random tokens from a fixed seed,
AdamW with the preset's learning rate, weight decay on matrices only, clipping at norm 1.

* ``attnlab``: ``make_optimizer`` + ``attnlab.train.train_steps`` with ``STEPS_PER_CALL`` (10)
  steps per compiled call, as ``attnlab.train.train`` (and so every notebook) trains.
* ``attnlab-step`` (with a reference): one ``attnlab.train.train_step`` call per step, as a
  hand-written loop (notebook 07's) trains.
* ``transformers-eager`` (the ratio's reference) and ``transformers-sdpa``: ``GPT2LMHeadModel``
  of the same shape (tied output head, tanh GELU), ``torch.optim.AdamW`` + ``clip_grad_norm_``,
  the same loss (mean cross-entropy over all B x T positions). Needs the ``[parity]`` extra;
  without it only attnlab is measured. ``--references eager,sdpa,compile`` adds
  ``torch.compile``.

Also reported: time to first step (with compilation), peak memory, FLOPs per token and model
FLOP utilisation against a 2048 x 2048 float32 matrix product timed in the same process.
Run ``python benchmarks/bench_train.py [--quick]`` (or ``make bench``); the harness's docstring
says how the timing works. The last line is the headline ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmark this checkout's attnlab, even if another is installed
import harness  # noqa: E402  (benchmarks/ is on the path: this script's folder)

MATMUL_N = 2048  # size of the square float32 matrix product whose rate MFU is measured against


def random_batch(model: dict, batch_size: int, seed: int):
    """``(x, y)``: ``(B, T)`` int32 random tokens and the tokens that follow them."""
    import numpy as np

    T, V = model["context_length"], model["vocab_size"]
    tokens = np.random.default_rng(seed).integers(0, V, (batch_size, T + 1), dtype=np.int32)
    return tokens[:, :-1], tokens[:, 1:]


def matmul_gflops(product, sync, repeats: int = 5) -> float:
    """Median GFLOP/s of ``product()`` (a ``MATMUL_N``-square float32 matrix product)."""
    sync(product())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(product())
        times.append(time.perf_counter() - t0)
    return 2 * MATMUL_N**3 / sorted(times)[repeats // 2] / 1e9


def setup_attnlab(model: dict, train: dict, seed: int, steps_per_call: int = 1):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from attnlab.gpt import GPT, GPTConfig
    from attnlab.train import TrainConfig, make_optimizer, train_step, train_steps

    gpt = GPT(GPTConfig(**model), rngs=nnx.Rngs(seed))
    optimizer = make_optimizer(gpt, TrainConfig(**train))
    x, y = map(jnp.asarray, random_batch(model, train["batch_size"], seed))
    K = steps_per_call
    xs, ys = (jnp.asarray(np.stack([a] * K)) for a in (x, y))  # K steps on the same batch

    def run(n: int) -> None:  # n steps; with K > 1, n calls of K steps (scaled in main)
        for _ in range(n):
            loss = train_step(gpt, optimizer, x, y) if K == 1 else train_steps(gpt, optimizer,
                                                                                xs, ys)
        jax.block_until_ready((loss, nnx.state(gpt, nnx.Param)))  # the updated weights too

    a = jax.random.normal(jax.random.key(seed), (MATMUL_N, MATMUL_N), jnp.float32)
    product = jax.jit(jnp.matmul)
    info = {"params": int(gpt.num_params()), "device": str(jax.devices()[0]), "steps_per_call": K,
            "matmul_gflops": matmul_gflops(lambda: product(a, a), jax.block_until_ready)}
    return run, info


def setup_transformers(impl: str, model: dict, train: dict, seed: int, threads: int):
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=model["vocab_size"], n_positions=model["context_length"],
        n_embd=model["d_model"], n_layer=model["n_layers"], n_head=model["n_heads"],
        n_inner=model["d_ff"], layer_norm_epsilon=model["layer_norm_epsilon"],
        activation_function={"tanh": "gelu_new", "exact": "gelu"}[model["gelu"]],
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    gpt = GPT2LMHeadModel._from_config(config, attn_implementation=impl.replace("compile", "sdpa"))
    gpt.train()
    params = list(gpt.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": train["weight_decay"]},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=train["learning_rate"], betas=(train["beta1"], train["beta2"]))
    forward = torch.compile(gpt) if impl == "compile" else gpt
    x, y = (torch.from_numpy(a.copy()).long() for a in random_batch(model, train["batch_size"], seed))

    def run(n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            logits = forward(input_ids=x, use_cache=False).logits
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, train["grad_clip"])
            optimizer.step()
        loss.item()

    a = torch.randn(MATMUL_N, MATMUL_N)
    info = {"params": sum(p.numel() for p in params),  # the tied head counted once
            "head_tied": gpt.lm_head.weight is gpt.transformer.wte.weight,
            "threads": torch.get_num_threads(),
            "matmul_gflops": matmul_gflops(lambda: a @ a, lambda t: None)}
    return run, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--references", default="eager,sdpa",
                        help="transformers variants, the first is the ratio's reference: "
                             "eager, sdpa, compile (default eager,sdpa)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time attnlab with GPTConfig(matmul_dtype='bfloat16') "
                             "(bfloat16 matrix products, float32 sums; not in the headline)")
    parser.add_argument("--scan", type=int, default=0, metavar="K",
                        help="also time attnlab.train.train_steps, K steps per compiled call "
                             "(not in the headline)")
    parser.add_argument("--seed", type=int, default=0, help="weights and tokens (default 0)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch.set_num_threads (default: all CPUs)")
    args = harness.parse_args(parser, argv)
    if unknown := set(args.references.split(",")) - {"eager", "sdpa", "compile"}:
        parser.error(f"--references takes eager, sdpa and compile; got {sorted(unknown)}")
    machine = harness.machine_info(["jax", "jaxlib", "flax", "optax", "numpy", "torch", "transformers"])

    from attnlab.data import CharTokenizer
    from attnlab.presets import PRESETS

    preset = PRESETS["default"]
    gpt_config = preset.gpt_config(CharTokenizer.ascii().vocab_size, dropout=0.0)
    model, train = dataclasses.asdict(gpt_config), dataclasses.asdict(preset.train_config())
    common = {"model": model, "train": train, "seed": args.seed}
    from attnlab.train import STEPS_PER_CALL

    configs = [harness.Config("attnlab", setup_attnlab, {**common, "steps_per_call": STEPS_PER_CALL})]
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    notes = [f"reference not measured: {' and '.join(missing)} not installed "
             "(pip install torch transformers, or the [parity] extra)"] if missing else []
    for impl in [] if missing else args.references.split(","):
        kwargs = {**common, "impl": impl, "threads": args.threads}
        configs.append(harness.Config(f"transformers-{impl}", setup_transformers, kwargs))
    if args.bf16 and missing:  # the headline compares the first two configurations
        notes.append("attnlab-bf16 not measured: it is reported against the reference only")
    elif args.bf16:
        bf16 = {**common, "model": {**model, "matmul_dtype": "bfloat16"},
                "steps_per_call": STEPS_PER_CALL}
        configs.append(harness.Config("attnlab-bf16", setup_attnlab, bf16))
    if not missing:
        configs.append(harness.Config("attnlab-step", setup_attnlab, common))
    if args.scan > 1 and missing:
        notes.append(f"attnlab-scan{args.scan} not measured: it is reported against the "
                     "reference only")
    elif args.scan > 1:
        configs.append(harness.Config(f"attnlab-scan{args.scan}", setup_attnlab,
                                      {**common, "steps_per_call": args.scan}))
    print(f"bench_train: preset 'default', {gpt_config}, batch {train['batch_size']}, AdamW; "
          f"{args.warmup} warm-up steps, {args.windows} windows x {args.steps} steps; "
          f"{machine['cpu_count']} CPUs, load average {machine['load_average'][0]:.1f}", flush=True)
    results, more_notes = harness.measure(configs, warmup=args.warmup, windows=args.windows,
                                          steps=args.steps)
    for r in results:  # a "step" of train_steps was K optimizer steps
        K = r["info"].get("steps_per_call", 1)
        r["window_step_s"] = [t / K for t in r["window_step_s"]]
        r["window_minor_faults_per_step"] = [f / K for f in r["window_minor_faults_per_step"]]
        for key in ("median_step_s", "min_step_s", "max_step_s", "minor_faults_per_step"):
            r[key] /= K
    per_step = train["batch_size"] * model["context_length"]
    flops = gpt_config.flops_per_token()
    for r in results:
        r["gflops"] = flops * per_step / r["median_step_s"] / 1e9
        r["mfu"] = r["gflops"] / r["info"]["matmul_gflops"]
        notes.append(f"{r['name']}: {r['info']['params']:,} parameters, {r['gflops']:.1f} GFLOP/s"
                     f" = {r['mfu']:.0%} of its {MATMUL_N}^2 float32 matmul rate"
                     f" ({r['info']['matmul_gflops']:.0f} GFLOP/s)")
    for r in results[2:]:
        if r["name"].startswith("attnlab-"):
            ref, base = results[1], results[0]
            notes.append(f"{r['name']}: {ref['median_step_s'] / r['median_step_s']:.2f}x "
                         f"{ref['name']}, {base['median_step_s'] / r['median_step_s']:.2f}x "
                         "attnlab (float32)")
    notes.append(f"FLOP/token {flops:,}: 3 x the forward's matrix products (GPTConfig.flops_per_token)")
    settings = {**vars(args), "json": str(args.json), "preset": "default", "model": model,
                "train": train, "dtype": "float32"}
    harness.report("bench_train", "train", results, per_step=per_step, unit="tok",
                   machine=machine, settings=settings, notes=notes + more_notes,
                   json_path=args.json, no_reference="no reference: install the [parity] extra"
                   if missing else "no reference measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

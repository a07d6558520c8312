"""Experiments for issue #11: variants of attnlab's training step, timed against each other.

Not part of ``make bench``: it measures candidate changes (see ``NOTES.md``) in one run, with the
harness's separate processes and alternating windows, on bench_train's reference configuration
(the ``default`` preset, batch 16 x 128, AdamW, float32). A "step" of a variant that runs K
optimizer steps per compiled call is the whole call; the table divides by K.

Variants (``--variants``, comma-separated):

* ``base``: ``attnlab.train.train_step`` (``nnx.jit``), one call per step, batch on device;
* ``cached``: ``base`` called through ``nnx.cached_partial(train_step, model, optimizer)``,
  which walks the model's object graph once instead of at every call;
* ``jit``: the same step as a pure function of the (model, optimizer) state under ``jax.jit``;
* ``donate``: ``jit`` with the state's buffers donated (updated in place);
* ``scanK`` (e.g. ``scan8``): ``donate`` running K steps per call with ``lax.scan`` over a
  ``(K, B, T)`` stack of batches kept on device;
* ``bf16``: ``base`` with every ``nnx.Linear`` (and the tied output head) multiplying in
  bfloat16 with float32 results (weights, gradients and AdamW stay float32);
* ``bf16vjp``: as ``bf16`` with a custom VJP whose two gradient products are bfloat16 too;
* ``bf16cfg``: ``base`` with ``GPTConfig(matmul_dtype="bfloat16")`` (what attnlab adopted);
* ``jaxdpa``: ``base`` with the blocks' attention replaced by ``jax.nn.dot_product_attention``;
* ``eager``: transformers GPT2LMHeadModel, as bench_train's reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import bench_train  # noqa: E402
import harness  # noqa: E402


def bf16_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                     **kwargs):
    """``lax.dot_general`` on bfloat16 copies of the operands, float32 result."""
    import jax.numpy as jnp
    from jax import lax

    return lax.dot_general(lhs.astype(jnp.bfloat16), rhs.astype(jnp.bfloat16), dimension_numbers,
                           precision=precision, preferred_element_type=jnp.float32)


def _bf16_matmul():
    """``x @ w`` for ``x (N, K)``, ``w (K, M)``: bfloat16 products, float32 sums and result, in
    the forward and in both gradient products (a custom VJP, so the backward is bfloat16 too)."""
    import jax
    import jax.numpy as jnp

    bf, f32 = jnp.bfloat16, jnp.float32

    @jax.custom_vjp
    def mm(x, w):
        return jnp.matmul(x.astype(bf), w.astype(bf), preferred_element_type=f32)

    def fwd(x, w):
        x16, w16 = x.astype(bf), w.astype(bf)
        return jnp.matmul(x16, w16, preferred_element_type=f32), (x16, w16)

    def bwd(res, g):
        x16, w16 = res
        g16 = g.astype(bf)
        return (jnp.matmul(g16, w16.T, preferred_element_type=f32),
                jnp.matmul(x16.T, g16, preferred_element_type=f32))

    mm.defvjp(fwd, bwd)
    return mm


def patch_model(gpt, variant: str) -> None:
    """Make ``gpt``'s dense layers and output head multiply in bfloat16 (``bf16``: forward only,
    ``bf16vjp``: forward and backward); other variants leave it as it is."""
    from flax import nnx

    if variant == "bf16":
        for _, m in gpt.iter_modules():
            if isinstance(m, nnx.Linear):
                m.dot_general = bf16_dot_general
        embed = gpt.token_embedding
        embed.attend = lambda x: bf16_dot_general(x, embed.embedding[...], (((x.ndim - 1,), (1,)), ((), ())))
    if variant == "bf16vjp":
        mm = _bf16_matmul()

        def dot(lhs, rhs, dims, precision=None, **kwargs):  # Linear's 2-D (N, K) x (K, M)
            assert lhs.ndim == 2 and dims == (((1,), (0,)), ((), ())), (lhs.shape, dims)
            return mm(lhs, rhs)
        for _, m in gpt.iter_modules():
            if isinstance(m, nnx.Linear):
                m.dot_general = dot
        embed = gpt.token_embedding

        def attend(x):
            return mm(x.reshape(-1, x.shape[-1]), embed.embedding[...].T).reshape(*x.shape[:-1], -1)
        embed.attend = attend


def setup_variant(variant: str, model: dict, train: dict, seed: int):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from attnlab.attention import multihead
    from attnlab.gpt import GPT, GPTConfig
    from attnlab.train import TrainConfig, cross_entropy, make_optimizer, train_step

    if variant == "jaxdpa":
        def dpa(q, k, v, mask=None, *, scale=None):
            return jax.nn.dot_product_attention(q, k, v, mask=mask, scale=scale), None
        multihead.scaled_dot_product_attention = dpa  # the name MultiHeadAttention calls
    if variant == "bf16cfg":  # the adopted form: GPTConfig(matmul_dtype="bfloat16")
        model = {**model, "matmul_dtype": "bfloat16"}
    gpt = GPT(GPTConfig(**model), rngs=nnx.Rngs(seed))
    patch_model(gpt, variant)
    optimizer = make_optimizer(gpt, TrainConfig(**train))
    x, y = map(jnp.asarray, bench_train.random_batch(model, train["batch_size"], seed))
    info = {"variant": variant}

    if variant in ("base", "bf16", "bf16vjp", "bf16cfg", "jaxdpa"):
        def run(n: int) -> None:
            for _ in range(n):
                loss = train_step(gpt, optimizer, x, y)
            jax.block_until_ready((loss, nnx.state(gpt, nnx.Param)))
        return run, info

    if variant == "cached":  # train_step with the model and optimizer bound once
        step = nnx.cached_partial(train_step, gpt, optimizer)

        def run(n: int) -> None:
            for _ in range(n):
                loss = step(x, y)
            jax.block_until_ready((loss, nnx.state(gpt, nnx.Param)))
        return run, info

    graphdef, state = nnx.split((gpt, optimizer))

    def one_step(state, x, y):
        m, opt = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: cross_entropy(m(x, deterministic=False), y))(m)
        opt.update(m, grads)
        return nnx.state((m, opt)), loss

    if variant in ("jit", "donate"):
        step = jax.jit(one_step, donate_argnums=(0,) if variant == "donate" else ())
        box = [state]

        def run(n: int) -> None:
            for _ in range(n):
                box[0], loss = step(box[0], x, y)
            jax.block_until_ready((loss, box[0]))
        return run, info

    if variant.startswith("scan"):
        K = int(variant[4:])
        batches = [bench_train.random_batch(model, train["batch_size"], seed + i) for i in range(K)]
        xs = jnp.asarray(np.stack([b[0] for b in batches]))
        ys = jnp.asarray(np.stack([b[1] for b in batches]))

        @functools.partial(jax.jit, donate_argnums=(0,))
        def steps(state, xs, ys):
            return jax.lax.scan(lambda s, xy: one_step(s, *xy), state, (xs, ys))

        box = [state]

        def run(n: int) -> None:
            for _ in range(n):
                box[0], losses = steps(box[0], xs, ys)
            jax.block_until_ready((losses, box[0]))
        return run, {**info, "steps_per_call": K}
    raise ValueError(f"unknown variant {variant!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="base,eager,donate,scan8,bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = harness.parse_args(parser, argv, warmup=3, windows=5, steps=6)
    from attnlab.data import CharTokenizer
    from attnlab.presets import PRESETS

    preset = PRESETS["default"]
    gpt_config = preset.gpt_config(CharTokenizer.ascii().vocab_size, dropout=0.0)
    model, train = dataclasses.asdict(gpt_config), dataclasses.asdict(preset.train_config())
    common = {"model": model, "train": train, "seed": args.seed}
    configs = []
    for v in args.variants.split(","):
        if v == "eager":
            configs.append(harness.Config("eager", bench_train.setup_transformers,
                                          {**common, "impl": "eager", "threads": args.threads}))
        else:
            configs.append(harness.Config(v, setup_variant, {**common, "variant": v}))
    machine = harness.machine_info(["jax", "jaxlib", "flax", "torch"])
    print(f"train_variants: load average {machine['load_average']}", flush=True)
    results, notes = harness.measure(configs, warmup=args.warmup, windows=args.windows,
                                     steps=args.steps)
    tokens = train["batch_size"] * model["context_length"]
    base = next((r for r in results if r["name"] == "base"), results[0])
    print(f"\n{'variant':<10} {'tok/s':>8} {'(min-max)':>15} {'ms/step':>8} {'vs base':>8} "
          f"{'1st s':>6} {'RSS MiB':>8}")
    for r in results:
        K = r["info"].get("steps_per_call", 1)
        rate = K * tokens / r["median_step_s"]
        r["tok_s"] = rate
        lo, hi = K * tokens / r["max_step_s"], K * tokens / r["min_step_s"]
        print(f"{r['name']:<10} {rate:>8.0f} {f'({lo:.0f}-{hi:.0f})':>15} "
              f"{1e3 * r['median_step_s'] / K:>8.1f} "
              f"{rate / (tokens / base['median_step_s']):>7.2f}x {r['first_step_s']:>6.1f} "
              f"{r.get('peak_rss_mib', 0):>8.0f}")
    for note in notes:
        print(note)
    import os
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

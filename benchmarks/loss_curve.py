"""Does a variant of the training step change what the model learns? Loss curves side by side.

Trains the ``default`` preset on the embedded corpus (as ``python -m attnlab train`` does, same
seed and batches) once per variant of ``train_variants.patch_model`` and prints the training
loss (mean of each block of steps) and the validation loss at every evaluation. Used for the
bfloat16 experiment in ``NOTES.md``. Run
``python benchmarks/loss_curve.py --steps 300 --variants base,bf16vjp``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train_variants  # noqa: E402


def run(variant: str, steps: int, eval_interval: int, seed: int) -> dict:
    import jax
    from flax import nnx

    from attnlab.data import CharTokenizer, load_corpus, split_tokens
    from attnlab.gpt import GPT
    from attnlab.presets import PRESETS
    from attnlab.train import train

    tokenizer = CharTokenizer.ascii()
    preset = PRESETS["default"]
    config = preset.train_config(steps=steps)
    config = dataclasses.replace(config, eval_interval=eval_interval)
    key = jax.random.key(seed)
    dtype = "bfloat16" if variant == "bf16cfg" else "float32"
    model = GPT(preset.gpt_config(tokenizer.vocab_size, matmul_dtype=dtype),
                rngs=nnx.Rngs(params=seed, dropout=jax.random.fold_in(key, 1)))
    train_variants.patch_model(model, variant)
    data = split_tokens(tokenizer.encode(load_corpus()))
    history = train(model, data, config, key=jax.random.split(key)[0], progress=False)
    return {"variant": variant, "train_loss": history.train_loss, "val_steps": history.val_steps,
            "val_loss": history.val_loss, "elapsed_s": history.elapsed_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="base,bf16vjp")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-interval", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    runs = [run(v, args.steps, args.eval_interval, args.seed) for v in args.variants.split(",")]
    block = args.eval_interval
    print(f"{'steps':<12}" + "".join(f"{r['variant']:>12}" for r in runs))
    for i in range(0, args.steps, block):
        print(f"train {i + 1:>4}-{i + block:<4}" + "".join(
            f"{sum(r['train_loss'][i:i + block]) / len(r['train_loss'][i:i + block]):>12.4f}"
            for r in runs))
    for j, step in enumerate(runs[0]["val_steps"]):
        print(f"val {step:>8}" + "".join(f"{r['val_loss'][j]:>12.4f}" for r in runs))
    print("elapsed s   " + "".join(f"{r['elapsed_s']:>12.1f}" for r in runs))
    if args.json:
        args.json.write_text(json.dumps(runs) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

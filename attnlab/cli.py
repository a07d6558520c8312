"""Command line: ``python -m attnlab train`` and ``python -m attnlab generate``.

Run ``python -m attnlab --help`` (or ``train --help`` / ``generate --help``) for the options.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
from pathlib import Path

from attnlab.presets import PRESETS

__all__ = ["main"]

def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m attnlab",
        description="Train a small GPT on text and generate from it, on your CPU.",
        epilog="Examples:\n"
        "  python -m attnlab train                      # about 4-5 minutes, writes runs/mini-gpt/\n"
        "  python -m attnlab generate --prompt 'The '   # uses the checkpoint that ships with attnlab",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,generate}")

    presets = "; ".join(f"{name}: {p.about}" for name, p in PRESETS.items())
    t = sub.add_parser(
        "train",
        help="train a character-level GPT on the embedded corpus",
        description="Train a character-level GPT on the Python language reference that ships "
        "with Python, then save the model, a loss curve and the training history.",
    )
    t.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help=f"model size and schedule ({presets}); default: default")
    t.add_argument("--steps", type=_positive_int, help="override the preset's number of steps")
    t.add_argument("--batch-size", type=_positive_int, help="override the batch size")
    t.add_argument("--learning-rate", type=float, help="override the peak learning rate")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/mini-gpt, or runs/<preset>)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    g = sub.add_parser(
        "generate",
        help="continue a prompt with a trained model",
        description="Continue a prompt, one sampled character at a time.",
    )
    g.add_argument("--checkpoint", type=Path, default=None,
                   help="a .safetensors file written by 'train' (default: the shipped mini GPT)")
    g.add_argument("--prompt", default="The ",
                   help="text to continue, in printable ASCII characters (default 'The ')")
    g.add_argument("--max-new-tokens", type=int, default=300,
                   help="how many characters to add (default 300)")
    g.add_argument("--temperature", type=float, default=0.8,
                   help="0 = always the most likely token (it soon repeats itself); "
                   "higher = more random (default 0.8)")
    g.add_argument("--top-k", type=int, default=None,
                   help="sample only from the k most likely tokens; 0 keeps all (default: all)")
    g.add_argument("--top-p", type=float, default=None,
                   help="sample only from the most likely tokens covering this much "
                   "probability, in (0, 1] (default: all)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def run_train(args: argparse.Namespace) -> int:
    import jax
    from flax import nnx

    from attnlab import checkpoint
    from attnlab.data import CharTokenizer, load_corpus, split_tokens
    from attnlab.gpt import GPT
    from attnlab.sampling import generate
    from attnlab.train import train
    from attnlab.viz import plot_history

    start = time.perf_counter()
    preset = PRESETS[args.preset]
    try:
        train_config = preset.train_config(
            steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / ("mini-gpt" if args.preset == "default" else args.preset)

    text = load_corpus()
    tokenizer = CharTokenizer.ascii()
    data = split_tokens(tokenizer.encode(text))
    config = preset.gpt_config(tokenizer.vocab_size)
    model = GPT(config, rngs=nnx.Rngs(params=args.seed, dropout=args.seed + 1))
    print(f"corpus: Python language reference, {len(text):,} characters "
          f"({len(data.train):,} train / {len(data.val):,} validation)")
    layers = f"{config.n_layers} layer" + ("s" if config.n_layers > 1 else "")
    print(f"model: {model.num_params():,} parameters, {layers}, "
          f"d_model {config.d_model}, {config.n_heads} heads, context {config.context_length}")
    print(f"training: {train_config.steps} steps of {train_config.batch_size} x "
          f"{config.context_length} characters; output folder {out}/")

    train_key, sample_key = jax.random.split(jax.random.key(args.seed))
    history = train(model, data, train_config, key=train_key, progress=not args.no_progress)
    val_loss = history.val_loss[-1]  # train() validates on the whole held-out text at the end

    prompt = "The "
    ids = generate(model, tokenizer.encode(prompt), 200, temperature=0.8, key=sample_key)
    print("\nsample (temperature 0.8):\n" + tokenizer.decode(ids) + "\n")

    out.mkdir(parents=True, exist_ok=True)
    elapsed = time.perf_counter() - start
    command = " ".join(["python -m attnlab", *args.argv])
    meta = {"preset": args.preset, "seed": args.seed, "steps": train_config.steps,
            "val_loss": round(val_loss, 4), "train_config": train_config.__dict__,
            "elapsed_s": round(elapsed, 1), "command": command}
    path = checkpoint.save(out / "model.safetensors", model, tokenizer, metadata=meta)
    checkpoint.atomic_write(out / "history.json", json.dumps(history.to_dict()).encode())
    fig = plot_history(history, title=f"mini GPT, preset {args.preset}", unit="character")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    checkpoint.atomic_write(out / "loss.png", png.getvalue())
    print(f"saved {path}, {out / 'loss.png'} and {out / 'history.json'}")
    print(f"validation loss {val_loss:.3f} nats/char after {train_config.steps} steps "
          f"in {_format_duration(elapsed)}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    import jax

    from attnlab import checkpoint
    from attnlab.pretrained import load_pretrained
    from attnlab.sampling import generate

    try:
        ckpt = load_pretrained() if args.checkpoint is None else checkpoint.load(args.checkpoint)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if ckpt.tokenizer is None:
        print(f"error: {args.checkpoint} has no tokenizer stored; cannot read a text prompt.",
              file=sys.stderr)
        return 2
    if not args.prompt:
        print("error: --prompt is empty; give at least one character, e.g. --prompt 'The '",
              file=sys.stderr)
        return 2
    unknown = sorted(set(args.prompt) - set(ckpt.tokenizer.vocab))
    if unknown:
        print(f"error: the prompt contains characters this model has never seen: "
              f"{''.join(unknown)!r}. Its {ckpt.tokenizer.vocab_size} characters are: "
              f"{ckpt.tokenizer.vocab!r}", file=sys.stderr)
        return 2
    try:
        prompt_ids = ckpt.tokenizer.encode(args.prompt)
        ids = generate(ckpt.model, prompt_ids, args.max_new_tokens,
                       temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                       key=jax.random.key(args.seed))
    except ValueError as error:
        # The library names its Python arguments (top_p=...); point at the flags instead.
        message = re.sub(r"\b(max_new_tokens|top_k|top_p|temperature)\b",
                         lambda m: "--" + m.group(1).replace("_", "-"), str(error))
        message = message.replace("=None (or 0)", " 0").replace("None or an integer", "an integer")
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(ckpt.tokenizer.decode(ids))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m attnlab`` and the ``attnlab`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.command == "train":
        return run_train(args)
    return run_generate(args)

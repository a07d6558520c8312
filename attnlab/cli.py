"""Command line: ``python -m attnlab train`` and ``python -m attnlab generate``.

From the project folder: ``.venv/bin/python -m attnlab --help`` (or ``train --help`` /
``generate --help``) lists the options.

Every argument is checked before JAX is imported, so a typo is answered at once and never
after minutes of training. Every error is one ``error: ...`` line on stderr with exit code 2;
errors raised by the library (a bad checkpoint, a character the tokenizer does not know) are
printed as they are, since they already name the argument and what is allowed.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from attnlab.presets import PRESETS

__all__ = ["SEED_RANGE", "STATE_FILE", "build_parser", "main"]

#: The seeds ``jax.random.key`` accepts: a signed 64-bit integer.
SEED_RANGE = (-(2**63), 2**63 - 1)
#: The resumable state of a run, written into the output folder at every validation.
STATE_FILE = "train_state.safetensors"
_PROG = "python -m attnlab"


class UsageError(Exception):
    """A bad argument: printed as one ``error:`` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its own errors are one ``error:`` line too (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


EPILOG = f"""\
Examples, run from the project folder:
  .venv/bin/{_PROG} train                             # 4-5 minutes, writes runs/mini-gpt/
  .venv/bin/{_PROG} train --steps 500 --out runs/half # stop a third of the way,
  .venv/bin/{_PROG} train --resume runs/half          # and finish it later
  .venv/bin/{_PROG} generate --prompt 'The '          # the mini GPT that ships with attnlab
"""

STEPS_HELP = """\
where training stops: the number of steps done when it ends (default: the preset's).
A new run's learning-rate schedule is fixed when it starts: the preset's, stretched to
--steps when --steps is larger. So a run stopped early is exactly the start of the full run
and can be finished with --resume. With --resume, the saved schedule is kept and --steps
only moves the stop (default: the end of the schedule); past its end the rate stays at its
floor."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Train a small GPT on text and generate from it, on your CPU.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,generate}")

    presets = "; ".join(f"{name}: {p.about}" for name, p in PRESETS.items())
    t = sub.add_parser(
        "train",
        help="train a character-level GPT on the embedded corpus",
        description=textwrap.fill(
            "Train a character-level GPT on the Python language reference that ships with "
            "Python, then save the model, a loss curve and the training history. The run's "
            f"full state ({STATE_FILE}) is saved at every validation and at the end, so a "
            "stopped or killed run can be continued with --resume.", width=88),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help=f"model size and schedule ({presets}); default: default")
    t.add_argument("--steps", help=STEPS_HELP)
    t.add_argument("--batch-size", help="override the preset's batch size")
    t.add_argument("--learning-rate", help="override the preset's peak learning rate (> 0)")
    t.add_argument("--seed", help="random seed, an integer (default 0)")
    t.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/mini-gpt, or runs/<preset>; with --resume, "
                   "the resumed folder)")
    t.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help=f"continue the run saved in DIR ({STATE_FILE}) up to --steps in total, "
                   "with its saved settings")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    g = sub.add_parser(
        "generate",
        help="continue a prompt with a trained model",
        description="Continue a prompt, one sampled character at a time.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("--checkpoint", type=Path, default=None,
                   help="a model.safetensors written by 'train', or its folder "
                   "(default: the shipped mini GPT)")
    g.add_argument("--prompt", default="The ",
                   help="text to continue, in printable ASCII characters (default 'The ')")
    g.add_argument("--max-new-tokens", default="300",
                   help="how many characters to add, >= 0 (default 300)")
    g.add_argument("--temperature", default="0.8",
                   help="0 = always the most likely token (it soon repeats itself); "
                   "higher = more random (default 0.8)")
    g.add_argument("--top-k", default=None,
                   help="sample only from the k most likely tokens; 0 keeps all (default: all)")
    g.add_argument("--top-p", default=None,
                   help="sample only from the most likely tokens covering this much "
                   "probability, in (0, 1] (default: all)")
    g.add_argument("--seed", default="0", help="random seed, an integer (default 0)")
    return parser


# --- checks that need no JAX --------------------------------------------------------------


def _int(flag: str, text: str | None, low: int, high: int | None = None, allowed: str = ""):
    """``text`` as an int in [low, high], or a UsageError naming ``flag``."""
    if text is None:
        return None
    allowed = allowed or (f">= {low}" if high is None else f"in [{low}, {high}]")
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{flag} must be an integer {allowed}; got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise UsageError(f"{flag} must be {allowed}; got {text}")
    return value


def _float(flag: str, text: str | None, ok, allowed: str):
    """``text`` as a finite float for which ``ok(value)`` holds, or a UsageError."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} must be a number {allowed}; got {text!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{flag} must be a finite number {allowed}; got {text}")
    if not ok(value):
        raise UsageError(f"{flag} must be {allowed}; got {text}")
    return value


def _seed(text: str | None) -> int | None:
    low, high = SEED_RANGE
    return _int("--seed", text, low, high,
                allowed=f"in [-2**63, 2**63 - 1] = [{low}, {high}] (what jax.random.key accepts)")


def _writable_folder(out: Path) -> None:
    """Create ``out`` if needed and prove a file can be written there, or raise UsageError."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output folder {out} is a file; give a folder with --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"output folder {out} cannot be created: {error.strerror or error}; "
                         "give another with --out") from None
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise UsageError(f"output folder {out} is not writable: {error.strerror or error}; "
                         "give another with --out") from None


def check_train_args(args: argparse.Namespace) -> None:
    """Validate and convert ``train``'s flags in place; raise UsageError naming the flag."""
    args.steps = _int("--steps", args.steps, 1)
    args.batch_size = _int("--batch-size", args.batch_size, 1)
    args.learning_rate = _float("--learning-rate", args.learning_rate, lambda v: v > 0, "> 0")
    args.seed = _seed(args.seed)
    if args.resume is not None:
        fixed = [flag for flag, value in (("--preset", args.preset), ("--seed", args.seed),
                                          ("--batch-size", args.batch_size),
                                          ("--learning-rate", args.learning_rate))
                 if value is not None]
        if fixed:
            raise UsageError(f"--resume continues a run with its saved settings; "
                             f"drop {', '.join(fixed)}")
        if not args.resume.is_dir():
            what = "is a file" if args.resume.exists() else "does not exist"
            raise UsageError(f"--resume {args.resume} {what}; give the run's output folder")
        if not (args.resume / STATE_FILE).is_file():
            raise UsageError(f"--resume {args.resume} holds no {STATE_FILE} (the state that "
                             "'train' saves at every validation), so there is no run to resume")
        args.out = args.out or args.resume
    else:
        args.preset = args.preset or "default"
        args.seed = 0 if args.seed is None else args.seed
        name = "mini-gpt" if args.preset == "default" else args.preset
        args.out = args.out or Path("runs") / name
    _writable_folder(args.out)  # last: it creates the folder


def check_generate_args(args: argparse.Namespace) -> None:
    """Validate and convert ``generate``'s flags in place; raise UsageError naming the flag."""
    args.max_new_tokens = _int("--max-new-tokens", args.max_new_tokens, 0)
    args.temperature = _float("--temperature", args.temperature, lambda v: v >= 0, ">= 0")
    args.top_k = _int("--top-k", args.top_k, 0, allowed=">= 0 (0 keeps every token)")
    args.top_p = _float("--top-p", args.top_p, lambda v: 0 < v <= 1, "in (0, 1]")
    args.seed = _seed(args.seed)
    if not args.prompt:
        raise UsageError("--prompt is empty; give at least one character, e.g. --prompt 'The '")
    if args.checkpoint is not None:
        if args.checkpoint.is_dir() and (args.checkpoint / "model.safetensors").is_file():
            args.checkpoint = args.checkpoint / "model.safetensors"
        elif not args.checkpoint.exists():
            raise UsageError(f"--checkpoint {args.checkpoint} does not exist")


# --- train --------------------------------------------------------------------------------


def _format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _write_outputs(folder: Path, model, tokenizer, meta: dict, history, title: str) -> None:
    """model.safetensors, history.json and loss.png into ``folder`` (each atomically)."""
    from attnlab import checkpoint
    from attnlab.viz import plot_history

    checkpoint.save(folder / "model.safetensors", model, tokenizer, metadata=meta)
    if history is None:
        return
    checkpoint.atomic_write(folder / "history.json", json.dumps(history.to_dict()).encode())
    fig = plot_history(history, title=title, unit="character")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    checkpoint.atomic_write(folder / "loss.png", png.getvalue())


def _rescue(error: OSError, out: Path, model, tokenizer, meta: dict, history, title: str) -> int:
    """Saving into ``out`` failed: write everything to a fresh temporary folder and say where."""
    rescue = Path(tempfile.mkdtemp(prefix="attnlab-run-"))
    _write_outputs(rescue, model, tokenizer, meta, history, title)
    if (out / STATE_FILE).is_file():
        shutil.copy2(out / STATE_FILE, rescue / STATE_FILE)
    kept = "model, its history and loss curve are" if history is not None else "model is"
    print(f"error: could not save into {out} ({error}); the trained {kept} in {rescue}/ "
          "instead", file=sys.stderr)
    return 2


def run_train(args: argparse.Namespace) -> int:
    check_train_args(args)  # before JAX is imported: a typo costs no time

    import dataclasses

    import jax
    from flax import nnx

    from attnlab import checkpoint
    from attnlab.data import CharTokenizer, load_corpus, split_tokens
    from attnlab.gpt import GPT
    from attnlab.sampling import generate
    from attnlab.train import train

    start = time.perf_counter()
    out, state_path = args.out, args.out / STATE_FILE
    tokenizer = CharTokenizer.ascii()
    command = " ".join([_PROG, *args.argv])
    if args.resume is None:
        preset_name, seed = args.preset, args.seed
        train_config = PRESETS[preset_name].train_config(
            steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate
        )
        config = PRESETS[preset_name].gpt_config(tokenizer.vocab_size)
        key = jax.random.key(seed)
        model = GPT(config, rngs=nnx.Rngs(params=seed, dropout=jax.random.fold_in(key, 1)))
        state, train_key, first = None, jax.random.split(key)[0], 0
    else:
        state = checkpoint.load_train_state(args.resume / STATE_FILE)
        preset_name, seed = state.metadata.get("preset", "?"), state.metadata.get("seed", 0)
        schedule = state.train_config.schedule_steps
        steps = args.steps or schedule
        if steps <= state.step:
            raise UsageError(f"the run in {args.resume} has already done {state.step} steps; "
                             f"pass --steps larger than {state.step} to train further")
        train_config = dataclasses.replace(state.train_config, steps=steps)
        model, config, train_key, first = state.model, state.model.config, None, state.step
    sample_key = jax.random.split(jax.random.key(seed))[1]

    text = load_corpus()
    data = split_tokens(tokenizer.encode(text))
    print(f"corpus: Python language reference, {len(text):,} characters "
          f"({len(data.train):,} train / {len(data.val):,} validation)")
    layers = f"{config.n_layers} layer" + ("s" if config.n_layers > 1 else "")
    print(f"model: {model.num_params():,} parameters, {layers}, "
          f"d_model {config.d_model}, {config.n_heads} heads, context {config.context_length}")
    schedule = train_config.schedule_steps
    if first:
        print(f"resuming the run in {args.resume}/ at step {first}")
    print(f"training: steps {first + 1}-{train_config.steps} of {train_config.batch_size} x "
          f"{config.context_length} characters (learning-rate schedule: {schedule} steps); "
          f"output folder {out}/")
    if train_config.steps > schedule:
        print(f"note: steps {schedule + 1}-{train_config.steps} run past the schedule's end, at "
              f"its floor rate {train_config.learning_rate * train_config.min_lr_ratio:g}")

    meta = {"preset": preset_name, "seed": seed, "command": command}
    title = f"mini GPT, preset {preset_name}"
    saved = {}  # the latest step whose state is on disk, and the live history

    def note_saved(step, history, model):
        saved.update(step=step, history=history)

    try:
        history = train(model, data, train_config, key=train_key, progress=not args.no_progress,
                        save_to=state_path, resume_from=state, metadata=meta,
                        callback=note_saved)
    except KeyboardInterrupt:
        where = (f"its state at step {saved['step']} is in {state_path}; continue it with "
                 f".venv/bin/{_PROG} train --resume {out}") if saved else "nothing was saved yet"
        print(f"error: interrupted; {where}", file=sys.stderr)
        return 130
    except OSError as error:  # the state could not be saved mid-run: keep the model all the same
        return _rescue(error, out, model, tokenizer, meta, saved.get("history"), title)
    val_loss = history.val_loss[-1]  # train() validates on the whole held-out text at the end

    ids = generate(model, tokenizer.encode("The "), 200, temperature=0.8, key=sample_key)
    print("\nsample (temperature 0.8):\n" + tokenizer.decode(ids) + "\n")

    elapsed = time.perf_counter() - start
    meta.update(steps=train_config.steps, val_loss=val_loss,
                train_config=dataclasses.asdict(train_config), elapsed_s=round(elapsed, 1))
    try:
        _write_outputs(out, model, tokenizer, meta, history, title)
    except OSError as error:
        return _rescue(error, out, model, tokenizer, meta, history, title)
    print(f"saved {out / 'model.safetensors'}, {state_path.name}, loss.png and history.json")
    print(f"validation loss {val_loss:.3f} nats/char after {train_config.steps} steps "
          f"in {_format_duration(elapsed)}")
    return 0


# --- generate -----------------------------------------------------------------------------


def run_generate(args: argparse.Namespace) -> int:
    check_generate_args(args)  # before JAX is imported

    import jax

    from attnlab import checkpoint
    from attnlab.pretrained import load_pretrained
    from attnlab.sampling import generate

    ckpt = load_pretrained() if args.checkpoint is None else checkpoint.load(args.checkpoint)
    if ckpt.tokenizer is None:
        raise UsageError(f"{args.checkpoint} has no tokenizer stored; cannot read a text prompt")
    prompt_ids = ckpt.tokenizer.encode(args.prompt)  # its error names unknown characters
    C = ckpt.config.context_length
    if len(prompt_ids) > C:
        print(f"note: the prompt has {len(prompt_ids)} characters but this model sees at most "
              f"{C}; it continues from the last {C}.", file=sys.stderr)
        prompt_ids = prompt_ids[-C:]
    ids = generate(ckpt.model, prompt_ids, args.max_new_tokens, temperature=args.temperature,
                   top_k=args.top_k, top_p=args.top_p, key=jax.random.key(args.seed))
    new = ids[len(prompt_ids):]
    print(args.prompt + ckpt.tokenizer.decode(new))  # the whole prompt, then the continuation
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m attnlab`` and the ``attnlab`` script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or an argparse error, already printed (2)
        return exit_.code if isinstance(exit_.code, int) else 0
    args.argv = argv
    try:
        return run_train(args) if args.command == "train" else run_generate(args)
    except (UsageError, ValueError, TypeError, OSError, FloatingPointError) as error:
        # UsageError names our flags; the library's errors name their argument and range.
        print(f"error: {error}", file=sys.stderr)
        return 2

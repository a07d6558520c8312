"""Training throughput of attnlab's GPT against Hugging Face GPT-2 (PyTorch), same run.

What it measures, for one fixed model (V 65, context 128, 4 layers, 4 heads, d_model 128,
d_ff 512, dropout 0, float32) and one fixed batch (16 × 128 random tokens from a fixed seed):

* ``attnlab``: ``make_optimizer(model, TrainConfig(...))`` + ``attnlab.train.train_step``
  (AdamW, global-norm clipping, warm-up/cosine schedule), as the notebooks train.
* ``transformers-eager`` (and ``transformers-sdpa``): ``GPT2LMHeadModel`` from the equivalent
  ``GPT2Config`` with ``torch.optim.AdamW`` (weight decay on matrices only) and
  ``clip_grad_norm_``, the same loss (mean cross-entropy over all B·T positions).

Each configuration lives in its own child process (same interpreter, same invocation), so its
peak RSS (``resource.getrusage``), thread pools and allocator are its own. The children are
set up one after another (import, build, first step — which includes JAX's compilation — and
warm-up); then the parent runs their timed windows round-robin, one child at a time, so that
a change in background load hits every configuration alike. A window is one untimed lead-in
step, then ``--steps-per-window`` steps ending with a block_until_ready / sync; ms/step is the
median window's time per step and tokens/s = B·T / that.

With the default breakdown each configuration also times forward only (loss, no gradient)
and forward + backward (loss and gradients, no optimizer update) to show where time goes.

Never asserts on timings. The last line printed is the summary, e.g.

    train: 0.93x transformers-eager (attnlab 20300 tok/s vs 21800 tok/s)

Run: ``python benchmarks/bench_train.py`` (or ``make bench``); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "bench_train.json"

# The reference configuration: the size of the mini GPT that the notebooks train.
MODEL = dict(vocab_size=65, context_length=128, n_layers=4, n_heads=4, d_model=128, d_ff=512)
BATCH_SIZE = 16
# Optimizer settings shared by both sides (attnlab's TrainConfig defaults).
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.99)
GRAD_CLIP = 1.0

DEFAULTS = dict(warmup=5, windows=5, steps_per_window=10)
QUICK = dict(warmup=1, windows=2, steps_per_window=2)
SETTLE_S = 0.05  # pause between two children's windows, so idle thread pools go to sleep

ATTNLAB = "attnlab"
REFERENCES = {"eager": "transformers-eager", "sdpa": "transformers-sdpa"}
PHASES = ("train", "forward", "forward_backward")


# --------------------------------------------------------------------------------------------
# helpers shared by parent and workers
# --------------------------------------------------------------------------------------------


def max_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (ru_maxrss: KiB on Linux)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_seconds() -> tuple[float, float] | None:
    """``(all processes, this process + its waited-for children)`` busy CPU seconds so far.

    The first comes from ``/proc/stat`` (Linux only; None elsewhere). Their difference over a
    run is what *other* processes used: the background load the timings had to share with.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # up to steal; not guest
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return busy, own


def random_batch(seed: int):
    """``(x, y)`` int32 numpy arrays ``(B, T)``: random tokens and their next tokens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    T, V = MODEL["context_length"], MODEL["vocab_size"]
    tokens = rng.integers(0, V, size=(BATCH_SIZE, T + 1), dtype=np.int32)
    return tokens[:, :-1].copy(), tokens[:, 1:].copy()


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file in the same folder + os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------
# workers: each configuration runs in its own child process
# --------------------------------------------------------------------------------------------


class Phase(NamedTuple):
    step: Callable[[], Any]  # one step; returns something ``sync`` can wait on
    sync: Callable[[Any], None]  # block until that step's work is done


def build_attnlab(opts: argparse.Namespace) -> tuple[dict, dict[str, Phase], Callable[[], dict]]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    if importlib.util.find_spec("attnlab") is None:  # not installed: use this checkout
        sys.path.insert(0, str(HERE.parent))
    from attnlab.gpt import GPT, GPTConfig
    from attnlab.train import TrainConfig, cross_entropy, make_optimizer, train_step

    rss_imported = max_rss_mib()
    config = GPTConfig(**MODEL, dropout=0.0)
    model = GPT(config, rngs=nnx.Rngs(opts.seed))
    # steps only sets the schedule's length; it must exceed warm-up and every step we take.
    train_config = TrainConfig(
        steps=1_000_000,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        beta1=BETAS[0],
        beta2=BETAS[1],
        grad_clip=GRAD_CLIP,
    )
    optimizer = make_optimizer(model, train_config)
    x_np, y_np = random_batch(opts.seed)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    jax.block_until_ready((x, y))

    def sync_train(loss):
        # The step updates the model in place; wait for the new parameters too, not only
        # for the loss.
        jax.block_until_ready((loss, jax.tree.leaves(nnx.state(model, nnx.Param))))

    @nnx.jit
    def forward_loss(model, x, y):
        return cross_entropy(model(x, deterministic=False), y)

    @nnx.jit
    def forward_backward(model, x, y):
        def loss_fn(model):
            return cross_entropy(model(x, deterministic=False), y)

        return nnx.value_and_grad(loss_fn)(model)  # (loss, grads): grads are outputs

    phases = {
        "train": Phase(lambda: train_step(model, optimizer, x, y), sync_train),
        "forward": Phase(lambda: forward_loss(model, x, y), jax.block_until_ready),
        "forward_backward": Phase(lambda: forward_backward(model, x, y), jax.block_until_ready),
    }
    info = {
        "framework": f"jax {jax.__version__} / flax {_version('flax')} / optax {_version('optax')}",
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "params": int(model.num_params()),
        "params_closed_form": int(config.num_params()),
        "flops_per_token": int(config.flops_per_token()),
        "rss_imported_mib": rss_imported,
    }

    def finish() -> dict:
        memory_stats = None
        try:
            stats = jax.devices()[0].memory_stats()  # None on CPU
            if stats:
                memory_stats = {
                    k: int(v) for k, v in stats.items() if isinstance(v, (int, np.integer))
                }
        except Exception as e:  # unimplemented on some backends
            memory_stats = {"error": f"{type(e).__name__}: {e}"}
        return {
            "final_loss": float(train_step(model, optimizer, x, y)),
            "jax_memory_stats": memory_stats,
        }

    return info, phases, finish


def build_transformers(
    opts: argparse.Namespace, impl: str
) -> tuple[dict, dict[str, Phase], Callable[[], dict]]:
    import torch  # ImportError here: the reference is unavailable
    import torch.nn.functional as F
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    rss_imported = max_rss_mib()
    torch.set_num_threads(opts.torch_threads)
    torch.manual_seed(opts.seed)
    config = GPT2Config(
        vocab_size=MODEL["vocab_size"],
        n_positions=MODEL["context_length"],
        n_embd=MODEL["d_model"],
        n_layer=MODEL["n_layers"],
        n_head=MODEL["n_heads"],
        n_inner=MODEL["d_ff"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        activation_function="gelu_new",  # tanh-approximated GELU, as attnlab's default
        bos_token_id=None,  # GPT-2's 50256 lies outside a 65-token vocabulary
        eos_token_id=None,
    )
    # GPT2LMHeadModel(config) takes no attn_implementation; _from_config does (transformers
    # 4.40 to 5.x).
    model = GPT2LMHeadModel._from_config(config, attn_implementation=impl).float()
    model.train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": WEIGHT_DECAY},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=LEARNING_RATE,
        betas=BETAS,
    )
    x_np, y_np = random_batch(opts.seed)
    x = torch.from_numpy(x_np).long()
    y = torch.from_numpy(y_np).long()
    V = MODEL["vocab_size"]

    def loss_of():
        logits = model(input_ids=x, use_cache=False).logits
        return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        return loss.detach()

    def forward_only():
        with torch.no_grad():
            return loss_of()

    def forward_backward():
        model.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        return loss.detach()

    def sync(loss):
        float(loss)  # CPU execution is synchronous; this mirrors the JAX side

    phases = {
        "train": Phase(train_step, sync),
        "forward": Phase(forward_only, sync),
        "forward_backward": Phase(forward_backward, sync),
    }
    info = {
        "framework": f"torch {torch.__version__} / transformers {transformers.__version__}",
        "backend": "cpu",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "dtype": str(model.dtype),
        "lm_head_tied_to_wte": model.lm_head.weight is model.transformer.wte.weight,
        "lm_head_bias": model.lm_head.bias is not None,
        "params": int(sum(p.numel() for p in model.parameters())),  # shared tensors once
        "rss_imported_mib": rss_imported,
    }
    return info, phases, lambda: {"final_loss": float(train_step())}


def serve(opts: argparse.Namespace) -> int:
    """Child process: set up one configuration, then run the windows the parent asks for.

    Protocol: one JSON object per line. The child answers ``{"ready": info}`` (or
    ``{"unavailable": why}``) once set up; then for ``{"cmd": "window", "phase", "steps",
    "max_s"}`` it answers ``{"seconds", "steps"}``, and for ``{"cmd": "finish"}`` it answers
    ``{"finished": info}`` and exits.
    """
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr

    def send(obj: dict) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    rss_start = max_rss_mib()
    t0 = time.perf_counter()
    try:
        if opts.worker == ATTNLAB:
            info, phases, finish = build_attnlab(opts)
        else:
            info, phases, finish = build_transformers(opts, opts.worker)
    except ImportError as e:
        if opts.worker == ATTNLAB:
            raise
        send({"unavailable": f"{type(e).__name__}: {e}"})
        return 0
    info["name"] = ATTNLAB if opts.worker == ATTNLAB else REFERENCES[opts.worker]
    info["rss_start_mib"] = rss_start
    info["build_s"] = time.perf_counter() - t0
    run = [name for name in PHASES if opts.breakdown or name == "train"]
    budget = opts.phase_budget_s or None
    info["phases"] = {}
    for name in run:
        step, sync = phases[name]
        start = time.perf_counter()
        sync(step())
        first = time.perf_counter() - start
        done = 0
        for _ in range(opts.warmup):
            if done and budget is not None and time.perf_counter() - start > 0.25 * budget:
                break
            sync(step())  # a sync per warm-up step keeps the budget check honest
            done += 1
        info["phases"][name] = {
            "first_step_s": first,
            "warmup_steps": done,
            "setup_s": time.perf_counter() - start,
        }
    info["rss_ready_mib"] = max_rss_mib()
    send({"ready": info})

    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "finish":
            send({"finished": {**finish(), "rss_peak_mib": max_rss_mib()}})
            return 0
        step, sync = phases[cmd["phase"]]
        steps, max_s = cmd["steps"], cmd.get("max_s")
        sync(step())  # untimed lead-in: wakes thread pools, warms caches after another child
        out, n = None, 0
        start = time.perf_counter()
        while n < steps:
            out = step()
            n += 1
            if max_s is not None and n < steps and time.perf_counter() - start > max_s:
                break
        sync(out)
        send({"seconds": time.perf_counter() - start, "steps": n})
    return 1  # the parent went away


# --------------------------------------------------------------------------------------------
# parent: start the children, interleave their windows, print the table, write JSON
# --------------------------------------------------------------------------------------------


class ChildError(RuntimeError):
    pass


class Child:
    """One configuration's child process, spoken to over its stdin/stdout."""

    def __init__(self, worker: str, opts: argparse.Namespace):
        self.worker = worker
        self.name = ATTNLAB if worker == ATTNLAB else REFERENCES[worker]
        self.timeout = opts.timeout
        self.stderr = tempfile.TemporaryFile(mode="w+")
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            worker,
            "--warmup",
            str(opts.warmup),
            "--seed",
            str(opts.seed),
            "--torch-threads",
            str(opts.torch_threads),
            "--phase-budget-s",
            str(opts.phase_budget_s),
        ]
        if not opts.breakdown:
            cmd.append("--no-breakdown")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
            cwd=HERE.parent,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr_tail(self, n: int = 15) -> str:
        self.stderr.seek(0)
        return "\n".join(self.stderr.read().strip().splitlines()[-n:])

    def receive(self) -> dict:
        try:
            line = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            self.close()
            raise ChildError(f"no answer within --timeout {self.timeout:.0f} s") from None
        if line is None:
            self.proc.wait()
            raise ChildError(f"exit status {self.proc.returncode}\n{self.stderr_tail()}")
        return json.loads(line)

    def ask(self, obj: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # receive() reports the exit status and the child's last words
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


def measure(opts: argparse.Namespace, workers: list[str], notes: list[str]) -> list[dict]:
    """Set up each configuration's child in turn, then time their windows round-robin."""
    children: list[Child] = []
    results: dict[str, dict] = {}
    try:
        for worker in workers:
            t0 = time.perf_counter()
            child = Child(worker, opts)
            try:
                answer = child.receive()
            except ChildError as e:
                child.close()
                if worker == ATTNLAB:
                    raise
                notes.append(f"{child.name}: FAILED during setup ({e})")
                continue
            if "unavailable" in answer:
                notes.append(f"{child.name}: skipped ({answer['unavailable']})")
                child.close()
                continue
            info = answer["ready"]
            print(
                f"  {child.name}: ready in {time.perf_counter() - t0:.1f} s "
                f"(first step {info['phases']['train']['first_step_s']:.2f} s)",
                flush=True,
            )
            children.append(child)
            results[child.name] = info

        budget = opts.phase_budget_s or None
        for phase in [p for p in PHASES if opts.breakdown or p == "train"]:
            t0 = time.perf_counter()
            spent = {c.name: results[c.name]["phases"][phase]["setup_s"] for c in children}
            windows: dict[str, list[tuple[float, int]]] = {c.name: [] for c in children}
            for w in range(opts.windows):
                k = w % len(children)
                for child in children[k:] + children[:k]:  # rotate who goes first
                    if child not in children:
                        continue  # failed earlier in this round
                    remaining = None if budget is None else budget - spent[child.name]
                    if remaining is not None and remaining <= 0 and windows[child.name]:
                        continue
                    time.sleep(SETTLE_S)
                    t1 = time.perf_counter()
                    try:
                        answer = child.ask(
                            {
                                "cmd": "window",
                                "phase": phase,
                                "steps": opts.steps_per_window,
                                "max_s": None if remaining is None else max(remaining, 0.0),
                            }
                        )
                    except ChildError as e:
                        if child.name == ATTNLAB:
                            raise
                        notes.append(f"{child.name}: FAILED while timing {phase} ({e})")
                        children.remove(child)
                        child.close()
                        del results[child.name]
                        continue
                    spent[child.name] += time.perf_counter() - t1
                    windows[child.name].append((answer["seconds"], answer["steps"]))
            for child in children:
                ws = windows[child.name]
                record = results[child.name]["phases"][phase]
                record["window_step_s"] = [s / n for s, n in ws]
                record["window_steps"] = [n for _, n in ws]
                record["median_step_s"] = statistics.median(record["window_step_s"])
                record["truncated"] = (
                    record["warmup_steps"] < opts.warmup
                    or len(ws) < opts.windows
                    or any(n < opts.steps_per_window for _, n in ws)
                )
            print(
                f"  timed {phase}: {len(windows[ATTNLAB])} rounds in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )

        for child in list(children):
            try:
                results[child.name].update(child.ask({"cmd": "finish"})["finished"])
                child.proc.wait(timeout=60)
            except (ChildError, subprocess.TimeoutExpired) as e:
                if child.name == ATTNLAB:
                    raise ChildError(str(e)) from e
                notes.append(f"{child.name}: FAILED at the end ({e})")
                del results[child.name]
    finally:
        for child in children:
            child.close()
    out = list(results.values())  # attnlab first
    for info in out:
        info.update(info.pop("phases"))  # result["train"], result["forward"], ...
    return out


def sig3(x: float) -> int:
    """Round to 3 significant figures for the summary line (20345 → 20300)."""
    return int(float(f"{x:.3g}")) if x >= 100 else round(x)


def tokens_per_s(step_s: float) -> float:
    return BATCH_SIZE * MODEL["context_length"] / step_s


def summarize(result: dict, flops_per_token: int) -> None:
    """Add derived figures (tokens/s, GFLOP/s, spread) to a worker's result in place."""
    train = result["train"]
    step_s = train["median_step_s"]
    result["tokens_per_s"] = tokens_per_s(step_s)
    result["ms_per_step"] = 1e3 * step_s
    result["ms_per_step_min"] = 1e3 * min(train["window_step_s"])
    result["ms_per_step_max"] = 1e3 * max(train["window_step_s"])
    result["time_to_first_step_s"] = train["first_step_s"]
    result["gflops_per_s"] = flops_per_token * result["tokens_per_s"] / 1e9
    result["truncated_phases"] = [
        phase
        for phase in ("train", "forward", "forward_backward")
        if result.get(phase, {}).get("truncated")
    ]
    if "forward" in result:
        fwd = result["forward"]["median_step_s"]
        fwdbwd = result["forward_backward"]["median_step_s"]
        result["breakdown_ms"] = {
            "forward": 1e3 * fwd,
            "forward_backward": 1e3 * fwdbwd,
            "backward_estimate": 1e3 * (fwdbwd - fwd),
            "optimizer_estimate": 1e3 * (step_s - fwdbwd),
            "train_step": 1e3 * step_s,
            "forward_gflops_per_s": flops_per_token / 3 * tokens_per_s(fwd) / 1e9,
            "forward_backward_gflops_per_s": flops_per_token * tokens_per_s(fwdbwd) / 1e9,
        }


def print_table(results: list[dict]) -> None:
    header = (
        f"{'config':<20} {'tokens/s':>9} {'ms/step':>8} {'(min-max)':>13} {'1st step s':>10} "
        f"{'peak RSS MiB':>17} {'params':>9} {'GFLOP/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        name = r["name"] + ("*" if r["truncated_phases"] else "")
        spread = f"({r['ms_per_step_min']:.0f}-{r['ms_per_step_max']:.0f})"
        rss = f"{r['rss_peak_mib']:.0f} (+{r['rss_peak_mib'] - r['rss_imported_mib']:.0f})"
        print(
            f"{name:<20} {r['tokens_per_s']:>9.0f} {r['ms_per_step']:>8.1f} {spread:>13} "
            f"{r['time_to_first_step_s']:>10.2f} {rss:>17} {r['params']:>9,} "
            f"{r['gflops_per_s']:>8.1f}"
        )
    print("peak RSS: whole process (+ growth after importing the framework).")
    for r in results:
        if r["truncated_phases"]:
            print(
                f"* {r['name']}: --phase-budget-s cut short {', '.join(r['truncated_phases'])} "
                f"(train windows ran {r['train']['window_steps']} steps)"
            )
    if any("breakdown_ms" in r for r in results):
        print()
        header = (
            f"{'config':<20} {'fwd ms':>8} {'fwd+bwd ms':>11} {'bwd≈ ms':>8} {'bwd/fwd':>8} "
            f"{'optim≈ ms':>10} {'step ms':>8} {'fwd GFLOP/s':>12} {'f+b GFLOP/s':>12}"
        )
        print(header)
        print("-" * len(header))
        for r in results:
            b = r.get("breakdown_ms")
            if not b:
                continue
            print(
                f"{r['name']:<20} {b['forward']:>8.1f} {b['forward_backward']:>11.1f} "
                f"{b['backward_estimate']:>8.1f} {b['backward_estimate'] / b['forward']:>8.2f} "
                f"{b['optimizer_estimate']:>10.1f} {b['train_step']:>8.1f} "
                f"{b['forward_gflops_per_s']:>12.1f} {b['forward_backward_gflops_per_s']:>12.1f}"
            )
        print("bwd≈ = (fwd+bwd) − fwd; optim≈ = step − (fwd+bwd): clipping + AdamW + dispatch.")


def reference_importable() -> str | None:
    """None if torch and transformers can be imported (by spec lookup), else what is missing."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    return ", ".join(missing) or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "Training throughput of attnlab's GPT (V 65, context 128, 4 layers, 4 heads, "
            "d_model 128, d_ff 512, batch 16, float32, AdamW) against Hugging Face GPT-2 in "
            "PyTorch, measured in the same invocation. Prints a table, writes JSON, and ends "
            "with one summary line 'train: <ratio>x <reference> (...)'."
        )
    )
    p.add_argument(
        "--steps-per-window",
        type=int,
        default=None,
        help=f"train steps per timed window (default {DEFAULTS['steps_per_window']}, "
        f"--quick {QUICK['steps_per_window']})",
    )
    p.add_argument(
        "--windows",
        type=int,
        default=None,
        help=f"timed windows; the median window gives ms/step (default {DEFAULTS['windows']}, "
        f"--quick {QUICK['windows']})",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"untimed steps after the first (compiling) step (default {DEFAULTS['warmup']}, "
        f"--quick {QUICK['warmup']})",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the results (default benchmarks/results/bench_train.json)",
    )
    p.add_argument(
        "--no-reference", action="store_true", help="measure attnlab only (no torch/transformers)"
    )
    p.add_argument(
        "--references",
        default="eager,sdpa",
        help="comma-separated transformers attention implementations to measure; the first "
        "one measured is the ratio's reference (default 'eager,sdpa')",
    )
    p.add_argument(
        "--no-breakdown",
        dest="breakdown",
        action="store_false",
        help="skip the forward-only and forward+backward timings",
    )
    p.add_argument("--quick", action="store_true", help="tiny step counts: a smoke test")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and tokens (default 0)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch.set_num_threads for the reference (default os.cpu_count(), here "
        f"{os.cpu_count()})",
    )
    p.add_argument(
        "--phase-budget-s",
        type=float,
        default=30.0,
        help="seconds allowed per timed phase (train step; forward; forward+backward) of "
        "each configuration before its warm-up and windows are cut short, so a busy machine "
        "cannot stretch the run; results say when this happened. 0 = no limit (default 30)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for a configuration's child process to set up or to finish "
        "one window before giving up on it (default 600)",
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)

    base = QUICK if opts.quick else DEFAULTS
    for key, value in base.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if opts.steps_per_window < 1 or opts.windows < 1:
        p.error(
            f"--steps-per-window and --windows must be >= 1; got "
            f"{opts.steps_per_window} and {opts.windows}"
        )
    if opts.phase_budget_s < 0:
        p.error(f"--phase-budget-s must be >= 0; got {opts.phase_budget_s}")
    if opts.torch_threads < 1:
        p.error(f"--torch-threads must be >= 1; got {opts.torch_threads}")
    if opts.warmup < 0:
        p.error(f"--warmup must be >= 0; got {opts.warmup}")
    impls = [s.strip() for s in opts.references.split(",") if s.strip()]
    unknown = [s for s in impls if s not in REFERENCES]
    if unknown:
        p.error(f"--references allows {sorted(REFERENCES)}; got {unknown}")
    opts.reference_impls = impls
    if opts.worker is not None and opts.worker not in (ATTNLAB, *REFERENCES):
        p.error(f"unknown worker {opts.worker!r}")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.worker is not None:
        return serve(opts)

    started = time.perf_counter()
    load_before = load_average()
    cpu_before = cpu_seconds()
    print(
        f"bench_train: V {MODEL['vocab_size']}, context {MODEL['context_length']}, "
        f"{MODEL['n_layers']} layers, {MODEL['n_heads']} heads, d_model {MODEL['d_model']}, "
        f"d_ff {MODEL['d_ff']}, batch {BATCH_SIZE}, float32, AdamW; "
        f"{opts.warmup} warm-up + {opts.windows} windows × {opts.steps_per_window} steps; "
        f"{os.cpu_count()} CPUs, load average {load_before}",
        flush=True,
    )

    notes: list[str] = []
    workers = [ATTNLAB]
    if opts.no_reference:
        notes.append("reference skipped (--no-reference)")
    elif missing := reference_importable():
        notes.append(
            f"reference skipped: {missing} not importable "
            "(pip install torch==2.13.0, then transformers; or the [parity] extra)"
        )
    else:
        workers += opts.reference_impls
    try:
        results = measure(opts, workers, notes)
    except ChildError as e:
        print(f"attnlab: FAILED ({e})", file=sys.stderr)
        return 1
    background = None  # mean CPU cores other processes kept busy while this ran
    cpu_after = cpu_seconds()
    if cpu_before and cpu_after:
        others = (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])
        background = max(others, 0.0) / (time.perf_counter() - started)
    attnlab = results[0]
    flops_per_token = attnlab["flops_per_token"]
    for r in results:
        summarize(r, flops_per_token)
    for note in notes:
        print(note, flush=True)

    print()
    print_table(results)
    print()
    refs = [r for r in results if r["name"] != ATTNLAB]
    print(f"framework: {attnlab['framework']} on {attnlab['device']} ({attnlab['backend']})")
    for r in refs:
        print(
            f"framework: {r['framework']}, attn_implementation={r['attn_implementation']}, "
            f"{r['torch_threads']} threads"
        )
    if refs:
        r = refs[0]
        print(
            f"parameters: attnlab {attnlab['params']:,} (closed form "
            f"{attnlab['params_closed_form']:,}), GPT2LMHeadModel {r['params']:,}; "
            f"GPT2LMHeadModel lm_head tied to wte: {'yes' if r['lm_head_tied_to_wte'] else 'NO'}"
            f"{', lm_head has a bias' if r['lm_head_bias'] else ', no lm_head bias'}"
            f"{' (equal counts)' if r['params'] == attnlab['params'] else ' (counts DIFFER)'}"
        )
    if attnlab["backend"] != "cpu" and refs:
        print(f"note: attnlab ran on {attnlab['backend']} but the reference runs on CPU.")
    print(
        "GFLOP/s = GPTConfig.flops_per_token() × tokens/s "
        f"({flops_per_token:,} FLOP/token, forward + backward ≈ 3 × forward)"
    )

    tok = attnlab["tokens_per_s"]
    if refs:
        ref = refs[0]
        ratio = tok / ref["tokens_per_s"]
        last = (
            f"train: {ratio:.2f}x {ref['name']} "
            f"(attnlab {sig3(tok)} tok/s vs {sig3(ref['tokens_per_s'])} tok/s)"
        )
    else:
        ratio = None
        last = f"train: attnlab {sig3(tok)} tok/s (no reference: install the [parity] extra)"

    elapsed = time.perf_counter() - started
    load_after = load_average()
    report = {
        "benchmark": "bench_train",
        "summary": last,
        "ratio": ratio,
        "reference": refs[0]["name"] if refs else None,
        "model": MODEL,
        "batch_size": BATCH_SIZE,
        "tokens_per_step": BATCH_SIZE * MODEL["context_length"],
        "dtype": "float32",
        "optimizer": {
            "name": "AdamW",
            "learning_rate": LEARNING_RATE,
            "betas": BETAS,
            "weight_decay": WEIGHT_DECAY,
            "grad_clip": GRAD_CLIP,
        },
        "settings": {
            "warmup": opts.warmup,
            "windows": opts.windows,
            "steps_per_window": opts.steps_per_window,
            "seed": opts.seed,
            "breakdown": opts.breakdown,
            "quick": opts.quick,
            "torch_threads": opts.torch_threads,
            "phase_budget_s": opts.phase_budget_s,
            "schedule": "children set up in turn, then windows round-robin, "
            "one untimed lead-in step per window",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "background_cpus": background,
        },
        "notes": notes,
        "results": results,
        "elapsed_s": elapsed,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    cpus = os.cpu_count() or 1
    if background is not None:
        print(f"background: other processes used {background:.2f} of {cpus} CPUs on average")
        busy = background >= 0.15 * cpus
        how = f"other processes used {background:.2f} of {cpus} CPUs during the run"
    else:
        busy = load_before is not None and load_before[0] >= 0.5 * cpus
        how = f"1-minute load average {load_before[0] if load_before else '?'} on {cpus} CPUs"
    if busy:
        warning = (
            f"warning: the machine was busy ({how}): timings are noisy, and torch's OpenMP "
            "threads slow down far more than XLA's under contention, which inflates the "
            "ratio; rerun on a quiet machine."
        )
        notes.append(warning)
        print(warning)
    try:
        write_json_atomic(opts.json, report)
        print(f"wrote {opts.json} ({elapsed:.0f} s, load average {load_before} → {load_after})")
    except OSError as e:
        print(f"could not write {opts.json}: {e}", file=sys.stderr)
    print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generation tokens per second: attnlab's cached generate against recomputing and transformers.

The task: greedy decoding (temperature 0) of 200 new tokens after a 16-token prompt, batch 1.
The model is the ``default`` preset (the notebooks' mini GPT: 4 layers, 4 heads, d_model 128,
d_ff 512, vocabulary 96, float32) with ``context_length`` 256 instead of 128, so that all
16 + 200 tokens fit in the window: Hugging Face's GPT-2 cannot slide a window, and inside the
window every attnlab step can use the cache. Weights: a fixed seed's initialisation, the same
numbers in every configuration (see ``build_gpt``).

* ``attnlab`` (the subject): ``attnlab.sampling.generate``, one compiled function that reads
  the prompt in one parallel pass (prefill) and then decodes with the key/value cache.
* ``transformers-generate`` (the headline's reference, with the ``[parity]`` extra):
  ``GPT2LMHeadModel.generate`` in PyTorch on the CPU (greedy, its own KV cache), the same
  configuration with attnlab's weights copied in (GPT-2's ``Conv1D`` stores ``(in, out)``, as
  ``nnx.Linear`` does; ``c_attn`` is ``W_q``, ``W_k`` and ``W_v`` side by side).
* ``attnlab-recompute``: no cache. A Python loop calls a jitted full forward pass on a
  fixed-size window of ``context_length`` tokens (compiled once) and takes the logits after
  the last real token, once per new token.

Each configuration also reports its greedy tokens, and the notes say whether they agree (they
should: the same model and weights, to float rounding). Run
``python benchmarks/bench_generate.py [--quick]`` (or ``make bench``); ``harness.py`` says how
the timing works. The last line is the headline ratio.

``--model gpt2-small`` measures GPT-2 small instead (124M parameters: 12 layers, 12 heads,
d_model 768, vocabulary 50257, context 1024), attnlab's cache against ``transformers``, and
notes each configuration's peak resident memory against a 2 GiB budget. Its weights are the
Hub's ``gpt2`` when they are in the local Hugging Face cache (``attnlab.hub.load_gpt2``, never a
download) or in ``--weights DIR``; otherwise a seeded random initialisation of the same shape:
the time per token depends on the shapes, not on the values, and the output says which was used.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmark this checkout's attnlab, even if another is installed
import harness  # noqa: E402  (benchmarks/ is on the path: this script's folder)

PROMPT_LENGTH, NEW_TOKENS, CONTEXT_LENGTH = 16, 200, 256
MEMORY_BUDGET_MIB = 2048  # GPT-2 small must generate within 2 GiB of resident memory

# GPT-2 small's config.json fields (the Hub's "gpt2"), read by attnlab.hub.config_from_hf.
GPT2_SMALL = {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768,
              "n_layer": 12, "n_head": 12, "n_inner": None, "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.0}


def prompt_ids(vocab_size: int, seed: int):
    """The ``(PROMPT_LENGTH,)`` int32 prompt: random tokens from a fixed seed."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, vocab_size, PROMPT_LENGTH, dtype=np.int32)


def build_gpt(model: dict, seed: int, weights: str | None = None, jitter: float = 0.3):
    """The GPT every configuration uses: initialised from ``seed``, then every weight jittered.

    Freshly initialised weights make greedy decoding repeat one token; the jitter (normal
    noise of standard deviation ``jitter``) gives varied tokens, so that comparing the
    configurations' tokens means something. The speed does not depend on the values.
    ``jitter=0`` keeps the initialisation (and no second copy of the weights: GPT-2 small's
    memory is measured). ``weights`` (a Hub name read from the local cache only, or a folder)
    loads a real GPT-2 checkpoint instead.
    """
    import jax
    from flax import nnx

    from attnlab.gpt import GPT, GPTConfig

    if weights is not None:
        from attnlab.hub import load_gpt2

        folder = Path(weights).expanduser()
        gpt, _ = (load_gpt2(local_dir=folder) if folder.is_dir()
                  else load_gpt2(weights, offline=True))
        return gpt

    gpt = GPT(GPTConfig(**model), rngs=nnx.Rngs(seed))
    if not jitter:
        return gpt
    params = nnx.state(gpt, nnx.Param)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    noisy = [x + jitter * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys, strict=True)]
    nnx.update(gpt, jax.tree.unflatten(treedef, noisy))
    return gpt


def setup_attnlab(model: dict, seed: int, weights: str | None = None, jitter: float = 0.3):
    import jax

    from attnlab.sampling import generate

    gpt, prompt = build_gpt(model, seed, weights, jitter), prompt_ids(model["vocab_size"], seed)
    key = jax.random.key(seed)

    info = {"params": int(gpt.num_params()), "device": str(jax.devices()[0])}

    def run(n: int) -> None:
        for _ in range(n):
            tokens = generate(gpt, prompt, NEW_TOKENS, temperature=0, key=key)
            tokens.block_until_ready()
        info["tokens"] = tokens.tolist()  # sent after the first steps: see harness._child

    return run, info


def setup_recompute(model: dict, seed: int):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    gpt, prompt = build_gpt(model, seed), prompt_ids(model["vocab_size"], seed)
    graphdef, state = nnx.split(gpt)
    C = model["context_length"]

    @jax.jit
    def next_token(state, window, n):  # window: (C,) tokens, the first n of them real
        logits = nnx.merge(graphdef, state)(window[None])[0]
        return jnp.argmax(logits[n - 1]).astype(jnp.int32)

    info = {"params": int(gpt.num_params())}

    def run(n: int) -> None:
        for _ in range(n):
            tokens = [int(t) for t in prompt]
            for _ in range(NEW_TOKENS):
                window = np.zeros(C, np.int32)  # the last C tokens, zero-padded at the end
                kept = tokens[-C:]
                window[: len(kept)] = kept
                tokens.append(int(next_token(state, window, len(kept))))
        info["tokens"] = tokens

    return run, info


def to_transformers(gpt, threads: int):
    """A ``GPT2LMHeadModel`` (eval mode) of the same shape holding ``gpt``'s weights."""
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(threads)
    c = gpt.config
    config = GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.context_length, n_embd=c.d_model,
        n_layer=c.n_layers, n_head=c.n_heads, n_inner=c.d_ff,
        layer_norm_epsilon=c.layer_norm_epsilon,
        activation_function={"tanh": "gelu_new", "exact": "gelu"}[c.gelu],
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
        pad_token_id=0)
    hf = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa").eval()

    def t(x):
        return torch.from_numpy(np.array(x[...], np.float32))

    weights = {"transformer.wte.weight": t(gpt.token_embedding.embedding),
               "transformer.wpe.weight": t(gpt.position_embedding.embedding),
               "transformer.ln_f.weight": t(gpt.ln_f.scale), "transformer.ln_f.bias": t(gpt.ln_f.bias)}
    for i, block in enumerate(gpt.blocks):
        a, p = block.attention, f"transformer.h.{i}."
        qkv = (a.W_q, a.W_k, a.W_v)
        weights |= {
            p + "ln_1.weight": t(block.ln_1.scale), p + "ln_1.bias": t(block.ln_1.bias),
            p + "attn.c_attn.weight": torch.cat([t(w.kernel) for w in qkv], dim=1),
            p + "attn.c_attn.bias": torch.cat([t(w.bias) for w in qkv]),
            p + "attn.c_proj.weight": t(a.W_o.kernel), p + "attn.c_proj.bias": t(a.W_o.bias),
            p + "ln_2.weight": t(block.ln_2.scale), p + "ln_2.bias": t(block.ln_2.bias),
            p + "mlp.c_fc.weight": t(block.mlp.fc_in.kernel), p + "mlp.c_fc.bias": t(block.mlp.fc_in.bias),
            p + "mlp.c_proj.weight": t(block.mlp.fc_out.kernel),
            p + "mlp.c_proj.bias": t(block.mlp.fc_out.bias),
        }
    missing, unexpected = hf.load_state_dict(weights, strict=False)
    missing = [k for k in missing if k != "lm_head.weight" and not k.endswith(".attn.bias")]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping: missing {missing}, unexpected {unexpected}")
    assert hf.lm_head.weight is hf.transformer.wte.weight, "the output head must stay tied"
    return hf


def setup_transformers(model: dict, seed: int, threads: int, weights: str | None = None,
                       jitter: float = 0.3):
    import numpy as np
    import torch

    gpt, prompt = build_gpt(model, seed, weights, jitter), prompt_ids(model["vocab_size"], seed)
    hf = to_transformers(gpt, threads)
    x = torch.from_numpy(prompt.astype(np.int64))[None]
    mask = torch.ones_like(x)

    with torch.inference_mode():  # the same weights give the same logits on the prompt
        theirs = hf(x, attention_mask=mask).logits[0].numpy()
    ours = np.asarray(gpt(prompt[None]))[0]
    info = {"params": sum(p.numel() for p in hf.parameters()), "threads": torch.get_num_threads(),
            "max_logit_difference": float(np.abs(theirs - ours).max())}

    def run(n: int) -> None:
        for _ in range(n):
            with torch.inference_mode():
                tokens = hf.generate(x, attention_mask=mask, do_sample=False, use_cache=True,
                                     max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
        info["tokens"] = tokens[0].tolist()

    return run, info


def cached_gpt2() -> str | None:
    """The folder of the Hub's ``gpt2`` in the local Hugging Face cache, or None (no download)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = [try_to_load_from_cache("gpt2", name) for name in ("config.json", "model.safetensors")]
    if all(isinstance(path, str) for path in found):
        return str(Path(found[1]).parent)
    return None


def agreement(name: str, tokens: list[int], reference: list[int]) -> str:
    """One line: do two configurations' greedy tokens agree, and if not, where they part."""
    if tokens == reference:
        return f"{name}: the same {len(tokens)} greedy tokens as attnlab"
    first = next((i for i, (a, b) in enumerate(zip(tokens, reference, strict=False)) if a != b),
                 min(len(tokens), len(reference)))
    return f"{name}: greedy tokens differ from attnlab's from position {first} on"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="weights and prompt (default 0)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch.set_num_threads (default: all CPUs)")
    parser.add_argument("--no-recompute", action="store_true",
                        help="leave out attnlab-recompute (the slowest configuration)")
    parser.add_argument("--model", choices=("default", "gpt2-small"), default="default",
                        help="the notebooks' mini GPT (default) or GPT-2 small (124M)")
    parser.add_argument("--weights", help="with --model gpt2-small: a folder holding GPT-2's "
                        "config.json and model.safetensors (default: the Hugging Face cache's "
                        "'gpt2' if present, else random weights of the same shape)")
    args = harness.parse_args(parser, argv, warmup=1, windows=5, steps=2)
    if args.weights and args.model != "gpt2-small":
        parser.error("--weights needs --model gpt2-small")
    machine = harness.machine_info(["jax", "jaxlib", "flax", "numpy", "torch", "transformers"])

    from attnlab.data import CharTokenizer
    from attnlab.presets import PRESETS

    weights = None
    if args.model == "gpt2-small":
        from attnlab.hub import config_from_hf

        gpt_config = config_from_hf(GPT2_SMALL)
        weights = args.weights or cached_gpt2()
        which = (f"GPT-2 small with the weights in {weights!r}" if weights else
                 "GPT-2 small's shape with GPT-2's random initialisation (the Hub's 'gpt2' is "
                 "not in the local cache; the speed depends on the shapes only)")
    else:
        gpt_config = PRESETS["default"].gpt_config(
            CharTokenizer.ascii().vocab_size, dropout=0.0, context_length=CONTEXT_LENGTH)
        which = f"preset 'default' with context_length {CONTEXT_LENGTH}"
    model = dataclasses.asdict(gpt_config)
    common = {"model": model, "seed": args.seed, "weights": weights,
              "jitter": 0.0 if args.model == "gpt2-small" else 0.3}
    configs = [harness.Config("attnlab", setup_attnlab, common)]
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    notes = [f"transformers-generate not measured: {' and '.join(missing)} not installed "
             "(pip install torch transformers, or the [parity] extra)"] if missing else []
    if not missing:
        configs.append(harness.Config("transformers-generate", setup_transformers,
                                      {**common, "threads": args.threads}))
    if not args.no_recompute and args.model == "default":
        configs.append(harness.Config("attnlab-recompute", setup_recompute,
                                      {"model": model, "seed": args.seed}))
    print(f"bench_generate: greedy, {NEW_TOKENS} new tokens after a {PROMPT_LENGTH}-token "
          f"prompt, batch 1; {which}: {gpt_config}; "
          f"{args.warmup} warm-up steps, {args.windows} windows x {args.steps} steps (a step is "
          f"one whole generation); {machine['cpu_count']} CPUs, load average "
          f"{machine['load_average'][0]:.1f}", flush=True)
    results, more_notes = harness.measure(configs, warmup=args.warmup, windows=args.windows,
                                          steps=args.steps)
    subject = results[0]
    for r in results[1:]:
        notes.append(agreement(r["name"], r["info"]["tokens"], subject["info"]["tokens"]))
    for r in results[1:]:
        ratio = r["median_step_s"] / subject["median_step_s"]
        targets = {"attnlab-recompute": 10, "transformers-generate": 8}  # the mini GPT's
        target = targets.get(r["name"]) if args.model == "default" else None
        notes.append(f"attnlab is {ratio:.1f}x as fast as {r['name']}"
                     + (f" (target >= {target}x)" if target else ""))
    if args.model == "gpt2-small":
        for r in results:
            rss = r.get("peak_rss_mib")
            if rss:
                verdict = "within" if rss <= MEMORY_BUDGET_MIB else "OVER"
                notes.append(f"{r['name']}: peak resident memory {rss:.0f} MiB, {verdict} the "
                             f"{MEMORY_BUDGET_MIB} MiB budget")
    for r in results:
        if "max_logit_difference" in r["info"]:
            notes.append(f"{r['name']}: largest difference from attnlab's logits on the prompt "
                         f"{r['info']['max_logit_difference']:.1e} (the same weights)")
    settings = {**vars(args), "json": str(args.json), "model": model, "weights": weights,
                "prompt_length": PROMPT_LENGTH, "new_tokens": NEW_TOKENS, "batch_size": 1,
                "decoding": "greedy", "dtype": "float32"}
    small = args.model == "gpt2-small"
    harness.report("bench_generate_gpt2_small" if small else "bench_generate",
                   "generate GPT-2 small" if small else "generate", results, per_step=NEW_TOKENS, unit="tok",
                   machine=machine, settings=settings, notes=notes + more_notes,
                   json_path=args.json, no_reference="no reference measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""attnlab: attention, transformers and GPTs, computed step by step in JAX/Flax.

One module per idea:

- :mod:`attnlab.data` — the embedded corpus, the character tokenizer, train/validation splits, batches;
  the date-translation data (dates in many human formats → ISO dates);
- :mod:`attnlab.tokenization` — characters, words and byte-pair encoding; token pieces; comparing embeddings;
- :mod:`attnlab.rnn` — recurrent networks, a module per idea: the Elman RNN and LSTM steps and
  layers, encoder–decoders without and with attention, training and evaluation on the date
  task, measurements (fading gradients, RNN against attention timings);
- :mod:`attnlab.attention` — attention, a module per idea: masks, scaled dot-product attention,
  multi-head attention, bfloat16 matrix products, the fused path, notebook 04's similarity scores;
- :mod:`attnlab.positional` — sinusoidal positional encoding;
- :mod:`attnlab.gpt` — the GPT model, its config and KV cache;
- :mod:`attnlab.sampling` — temperature, top-k, top-p and compiled generation, a module per idea:
  the logit filters, the compiled KV-cached loop, token generation, text generation;
- :mod:`attnlab.train` — the loss, the compiled train step, the training loop, evaluation;
- :mod:`attnlab.presets` — the named training recipes shared by CLI, notebooks and benchmarks;
- :mod:`attnlab.finetune` — fine-tuning, a module per idea: choosing what trains, new tokens, LoRA,
  masked losses, classification heads, prompt → completion pairs;
- :mod:`attnlab.checkpoint` — saving and loading models with safetensors;
- :mod:`attnlab.pretrained` — the shipped mini GPT (:func:`load_pretrained`);
- :mod:`attnlab.hub` — GPT-2 from the Hugging Face Hub (or its file layout) in attnlab's GPT;
- :mod:`attnlab.viz` — the notebooks' figures, a module per kind of figure;
- :mod:`attnlab.widgets` — the notebooks' interactive views, a module per view;
- :mod:`attnlab.quiz` — multiple-choice self-checks;
- :mod:`attnlab.checks` — exercise checkers that compare a learner's function with a reference,
  a module per step of a check;
- :mod:`attnlab.exercises` — every notebook exercise (a module per notebook), checked by
  :func:`~attnlab.exercises.check_exercise`;
- :mod:`attnlab.runtime` — library versions and devices, printed by each notebook's Colab cell;
  glibc's allocator tuned for XLA (when attnlab's JAX modules load; ``ATTNLAB_TUNE_MEMORY=0``
  leaves it alone);
- :mod:`attnlab.cli` — ``python -m attnlab train`` and ``generate``.

``python -m attnlab --help`` lists the command-line tools.
"""

import sys as _sys

from attnlab.pretrained import load_pretrained

if "jax" in _sys.modules:  # otherwise attnlab.attention and attnlab.data do it when imported
    from attnlab.runtime import tune_memory_unless_disabled as _tune

    _tune()

__version__ = "0.1.0"
__all__ = ["__version__", "load_pretrained"]

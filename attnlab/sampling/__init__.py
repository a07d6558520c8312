"""From next-token logits to text: temperature, top-k, top-p (nucleus) and generation.

A language model gives, for each position, logits ``(..., V)`` over the V tokens. Sampling
turns the last position's logits into one next token, appends it, and repeats. This module holds
the three filters that reshape the distribution before a token is drawn, and :func:`generate`,
which reads the prompt in one parallel pass, then adds token after token reusing the model's
key/value cache, for one prompt or a batch, in one compiled function.

Every filter maps logits to logits of the same shape and dtype; a removed token gets logit
``-inf`` (probability exactly 0 after the softmax). Logits may contain ``-inf`` (impossible
tokens) but no NaN or ``+inf``, and every row needs at least one finite logit: the public
functions raise a ValueError otherwise (for concrete arrays; traced values cannot be checked).

One module per idea (import from here, e.g. ``from attnlab.sampling import generate``):

- :mod:`attnlab.sampling.filters` — :func:`apply_temperature`, :func:`top_k_filter`,
  :func:`top_p_filter`, :func:`next_token_distribution`, with their argument checks
  (notebook 08);
- :mod:`attnlab.sampling.loop` — the compiled prefill and KV-cached decode loop that draws each
  token (``_generate_core``, the jitted function whose compiled versions the tests count);
- :mod:`attnlab.sampling.generation` — :func:`generate` and :class:`PromptTruncatedWarning`
  (notebooks 06, 07, 08, 10);
- :mod:`attnlab.sampling.text` — :func:`generate_text`, text in and text out with a ``stop``
  string (notebooks 05, 08, 09).

Sources: Ackley, Hinton & Sejnowski 1985 (temperature in a Boltzmann distribution); Fan, Lewis &
Dauphin 2018, "Hierarchical Neural Story Generation", §5.4 (top-k sampling); Holtzman et al.
2020, "The Curious Case of Neural Text Degeneration", §3.1 (nucleus / top-p sampling).
"""

from attnlab.sampling.filters import (
    apply_temperature,
    next_token_distribution,
    top_k_filter,
    top_p_filter,
)
from attnlab.sampling.generation import PromptTruncatedWarning, generate
from attnlab.sampling.text import generate_text

__all__ = [
    "PromptTruncatedWarning",
    "apply_temperature",
    "generate",
    "generate_text",
    "next_token_distribution",
    "top_k_filter",
    "top_p_filter",
]

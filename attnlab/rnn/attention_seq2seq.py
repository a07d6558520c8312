"""The encoder–decoder with attention: at each output step the decoder reads a weighted
average of all encoder states (Bahdanau et al. 2015; notebook 03).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from attnlab.attention import dot_product_score, masked_softmax
from attnlab.rnn.cells import _check_sizes
from attnlab.rnn.seq2seq import Seq2Seq

__all__ = ["AttentionSeq2Seq"]


class AttentionSeq2Seq(Seq2Seq):
    """Encoder–decoder with attention: each output step reads a weighted average of all
    encoder states.

    At output step i the decoder's previous hidden state s_{i-1} scores every encoder state
    h_j; a softmax over the real (unpadded) source positions turns the scores into weights
    α_ij ≥ 0 that sum to 1; the context c_i = Σ_j α_ij h_j takes the place of the plain
    model's fixed c: it is fed into the decoder step together with the previous output
    character, and the logits are read from [s_i, c_i].

    Args:
      as :class:`Seq2Seq`, plus
      score: ``"additive"`` (Bahdanau: ``v_a · tanh(s W_a + h U_a)``, see
        :func:`attnlab.attention.additive_score`) or ``"dot"`` (scaled dot product s·h/√H).
      d_attention: hidden width d_a of the additive score (default H).

    Attributes (besides Seq2Seq's):
      W_a ``(H, d_a)``, U_a ``(H, d_a)``, v_a ``(d_a,)``: the additive score's parameters
      (unused with ``score="dot"``).

    Raises:
      ValueError: as :class:`Seq2Seq`, or for an unknown ``score``.

    Source: Bahdanau, Cho & Bengio 2015, §3.1 and Appendix A.1.2 (with a one-directional
    encoder here, the same as the plain model's, so that the two differ only in attention).
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, *, d_embed: int = 32,
                 d_hidden: int = 64, cell: str = "lstm", score: str = "additive",
                 d_attention: int | None = None, rngs: nnx.Rngs):
        if score not in ("additive", "dot"):
            raise ValueError(f"score must be 'additive' or 'dot'; got {score!r}.")
        super().__init__(source_vocab_size, target_vocab_size, d_embed=d_embed,
                         d_hidden=d_hidden, cell=cell, rngs=rngs)
        self.score = score
        d_a = d_hidden if d_attention is None else d_attention
        _check_sizes(d_attention=d_a)
        init = nnx.initializers.lecun_normal()
        self.W_a = nnx.Param(init(rngs.params(), (d_hidden, d_a)))
        self.U_a = nnx.Param(init(rngs.params(), (d_hidden, d_a)))
        self.v_a = nnx.Param(nnx.initializers.normal(1.0 / math.sqrt(d_a))(rngs.params(), (d_a,)))

    def prepare(self, states: jax.Array, mask: jax.Array, final) -> dict:
        """Keep every encoder output ``(B, S, H)`` and the mask; for the additive score also
        the keys' projection ``states @ U_a`` ``(B, S, d_a)``, computed once per source rather
        than at every output step (that makes training several times faster)."""
        keys = states @ self.U_a[...] if self.score == "additive" else states
        return {"states": states, "mask": mask, "keys": keys}

    def context(self, query: jax.Array, encoded: dict):
        """The attention-weighted average of the encoder outputs ``(B, H)`` and the weights
        ``(B, S)``; ``query`` ``(B, H)`` is the decoder's previous hidden state."""
        if self.score == "additive":
            # = attnlab.attention.additive_score(query[:, None], states, W_a, U_a, v_a)[:, 0],
            # with states @ U_a taken from prepare() (the tests check the two agree).
            hidden = jnp.tanh((query @ self.W_a[...])[:, None, :] + encoded["keys"])
            scores = hidden @ self.v_a[...]
        else:
            scores = dot_product_score(query[:, None, :], encoded["states"])[:, 0]
        weights = masked_softmax(scores, encoded["mask"])
        return jnp.einsum("bs,bsh->bh", weights, encoded["states"]), weights

    def attend(self, query: jax.Array, states: jax.Array, mask: jax.Array):
        """Attention of one decoder state over the encoder states.

        Args:
          query: ``(B, H)`` the decoder's previous hidden state; states: ``(B, S, H)``;
          mask: ``(B, S)`` bool, False at padding.

        Returns:
          ``(context, weights)``: context ``(B, H)``, weights ``(B, S)`` (≥ 0, summing to 1
          over the real positions, exactly 0 at padding). Scores are
          :func:`attnlab.attention.additive_score` (or the scaled dot product), normalised
          by :func:`attnlab.attention.masked_softmax`.
        """
        return self.context(query, self.prepare(states, mask, None))

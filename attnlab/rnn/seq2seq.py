"""The encoder–decoder without attention, whose decoder sees only the encoder's last hidden
vector: the bottleneck (notebook 02; notebook 03 compares attention against it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from attnlab.rnn.cells import _check_sizes, make_rnn

__all__ = ["Seq2Seq"]


# --- encoder–decoders -------------------------------------------------------------------------


class Seq2Seq(nnx.Module):
    """Encoder–decoder whose decoder sees only the encoder's last hidden vector.

    The encoder RNN reads the source; its final state (after the last real character) becomes
    the decoder's initial state, and its last hidden vector c is also handed to the decoder at
    every output step. The decoder RNN reads the previous output character (the start token
    ``0`` first) together with c, and the next character's logits are read from its new
    hidden vector and c. Everything the decoder knows about the source has to pass through
    that one vector c: the bottleneck. (:class:`AttentionSeq2Seq` differs only in what c is.)

    Args:
      source_vocab_size, target_vocab_size: vocabulary sizes.
      d_embed: width of the character embeddings; d_hidden: width H of both RNNs.
      cell: ``"lstm"`` (default) or ``"rnn"`` (Elman), for the encoder and the decoder.
      rngs: ``nnx.Rngs`` for the initial weights.

    Raises:
      ValueError: if a size is below 1 or ``cell`` is unknown.

    Source: Cho et al. 2014, "Learning Phrase Representations using RNN Encoder–Decoder for
    Statistical Machine Translation" (the summary c at every decoder step); Sutskever, Vinyals
    & Le 2014 (the encoder's final state starts the decoder).
    """

    def __init__(self, source_vocab_size: int, target_vocab_size: int, *, d_embed: int = 32,
                 d_hidden: int = 64, cell: str = "lstm", rngs: nnx.Rngs):
        _check_sizes(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                     d_embed=d_embed, d_hidden=d_hidden)
        self.d_hidden = d_hidden
        self.source_embed = nnx.Embed(source_vocab_size, d_embed, rngs=rngs)
        self.target_embed = nnx.Embed(target_vocab_size, d_embed, rngs=rngs)
        self.encoder = make_rnn(cell, d_embed, d_hidden, rngs=rngs)
        self.decoder = make_rnn(cell, d_embed + d_hidden, d_hidden, rngs=rngs)
        self.out = nnx.Linear(2 * d_hidden, target_vocab_size, rngs=rngs)

    def encode(self, source: jax.Array, lengths: jax.Array):
        """Encoder outputs ``(B, S, H)``, its final state, and the source mask ``(B, S)``."""
        mask = jnp.arange(source.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
        states, final = self.encoder(self.source_embed(source), mask)
        return states, final, mask

    def prepare(self, states: jax.Array, mask: jax.Array, final) -> dict:
        """What the decoder keeps of the encoder: here only its last hidden vector ``(B, H)``."""
        return {"last": self.encoder.output(final)}

    def context(self, query: jax.Array, encoded: dict):
        """What the decoder reads from the source at one step: here always the encoder's last
        hidden vector ``(B, H)``, whatever the decoder's ``query`` ``(B, H)``; no weights."""
        return encoded["last"], None

    def _step(self, state, y_prev, encoded):
        """One decoder step: previous state and output id ``(B,)`` → new state, logits ``(B, V)``
        and attention weights ``(B, S)`` (None for the plain model)."""
        context, weights = self.context(self.decoder.output(state), encoded)
        x = jnp.concatenate([self.target_embed(y_prev), context], axis=-1)
        state = self.decoder.step(state, x)
        logits = self.out(jnp.concatenate([self.decoder.output(state), context], axis=-1))
        return state, logits, weights

    def decode(self, source: jax.Array, lengths: jax.Array, target_in: jax.Array | None = None,
               *, n_steps: int = 10):
        """Run the decoder.

        Args:
          source: ``(B, S)`` int source ids; lengths: ``(B,)`` int, real characters per row.
          target_in: ``(B, T)`` int decoder inputs (the start token, then the target shifted
            right: *teacher forcing*); ``None`` decodes greedily for ``n_steps`` steps, each
            step reading the previous step's most likely character.

        Returns:
          ``(logits, weights)``: logits ``(B, T, V)``; weights ``(B, T, S)`` attention weights
          for :class:`AttentionSeq2Seq`, ``None`` for this model.

        Raises:
          ValueError: if the shapes do not fit together.
        """
        if source.ndim != 2 or jnp.shape(lengths) != source.shape[:1]:
            raise ValueError(f"source must be (B, S) and lengths (B,); got {source.shape} and "
                             f"{jnp.shape(lengths)}.")
        if target_in is not None and (target_in.ndim != 2 or target_in.shape[0] != source.shape[0]):
            raise ValueError(f"target_in must be (B, T) with B = {source.shape[0]}; got "
                             f"{target_in.shape}.")
        states, final, mask = self.encode(source, lengths)
        encoded = self.prepare(states, mask, final)
        B = source.shape[0]
        forced = target_in is not None
        steps = jnp.swapaxes(target_in, 0, 1) if forced else jnp.zeros((n_steps, B), jnp.int32)

        def body(carry, y_given):
            state, y_prev = carry
            state, logits, weights = self._step(state, y_given if forced else y_prev, encoded)
            return (state, jnp.argmax(logits, -1).astype(jnp.int32)), (logits, weights)

        start = jnp.zeros((B,), jnp.int32)
        _, (logits, weights) = jax.lax.scan(body, (final, start), steps)
        weights = None if weights is None else jnp.swapaxes(weights, 0, 1)
        return jnp.swapaxes(logits, 0, 1), weights

    def __call__(self, source: jax.Array, lengths: jax.Array, target_in: jax.Array) -> jax.Array:
        """Teacher-forced logits ``(B, T, V)``; see :meth:`decode`."""
        return self.decode(source, lengths, target_in)[0]

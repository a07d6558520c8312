"""Boolean attention masks, ``True`` = may attend: the causal mask (notebooks 04, 05 and 06,
the GPT, notebook 09's fine-tuning), padding masks and their combination, and the mask
patterns of encoders, decoders and encoder–decoders (notebook 06).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "bidirectional_mask",
    "causal_mask",
    "combine_masks",
    "cross_attention_mask",
    "encoder_decoder_masks",
    "padding_mask",
]


def causal_mask(seq_len: int) -> jax.Array:
    """Mask that lets position t attend to positions 0..t only (no peeking at the future).

    Args:
      seq_len: number of positions T (≥ 1).

    Returns:
      ``(T, T)`` bool, lower-triangular: ``mask[t, s] = s <= t``. Broadcasts against
      ``(B, H, T, T)``.

    Raises:
      ValueError: if ``seq_len < 1``.

    Source: Vaswani et al. 2017, §3.2.3 (masking in the decoder).
    """
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1; got {seq_len}.")
    return jnp.tril(jnp.ones((seq_len, seq_len), dtype=bool))


def padding_mask(lengths: jax.Array, seq_len: int) -> jax.Array:
    """Mask that hides padding keys: sequence b has ``lengths[b]`` real tokens, then padding.

    Args:
      lengths: ``(B,)`` int, each in ``[0, seq_len]``.
      seq_len: S, the padded length.

    Returns:
      ``(B, 1, 1, S)`` bool: ``mask[b, 0, 0, s] = s < lengths[b]``.

    Raises:
      ValueError: if ``seq_len < 1`` or ``lengths`` is not 1-D.
    """
    lengths = jnp.asarray(lengths)
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1; got {seq_len}.")
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (B,); got shape {lengths.shape}.")
    return (jnp.arange(seq_len)[None, :] < lengths[:, None])[:, None, None, :]


def combine_masks(*masks: jax.Array | None) -> jax.Array | None:
    """Logical AND of several boolean masks, broadcast together; ``None`` entries are skipped.

    Returns:
      The combined bool mask, or ``None`` if every argument is ``None``.

    Raises:
      ValueError: if a mask is not boolean or the shapes do not broadcast.
    """
    present = [jnp.asarray(m) for m in masks if m is not None]
    if not present:
        return None
    for i, m in enumerate(present):
        if m.dtype != jnp.bool_:
            raise ValueError(f"mask {i} must be boolean (True = may attend); got dtype {m.dtype}.")
    try:
        shape = jnp.broadcast_shapes(*(m.shape for m in present))
    except ValueError:
        shapes = [m.shape for m in present]
        raise ValueError(f"mask shapes {shapes} do not broadcast together.") from None
    out = jnp.ones(shape, dtype=bool)
    for m in present:
        out = out & m
    return out


# --- the mask patterns of the three transformer families ------------------------------------


def _broadcast_bool_mask(mask, shape: tuple, target: str) -> jax.Array:
    """``mask`` as a bool array broadcast to ``shape``; ``target`` names that shape in errors.

    Raises:
      ValueError: if the mask is not boolean or does not broadcast to ``shape``.
    """
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean (True = may attend); got dtype {mask.dtype}.")
    try:
        return jnp.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(
            f"mask of shape {mask.shape} does not broadcast to {target} {shape}."
        ) from None


def _check_length(name: str, value) -> int:
    # Python and NumPy integers have __index__; floats, bools and arrays of several do not.
    if isinstance(value, bool) or not hasattr(value, "__index__") or value.__index__() < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    return value.__index__()


def bidirectional_mask(seq_len: int) -> jax.Array:
    """Mask that lets every position attend to every position, earlier or later.

    This is the self-attention of an encoder (BERT, the encoder of T5): each token's new vector
    may draw on both its left and its right context. Such a model cannot be trained to predict
    the next token (it would see it); BERT is trained to recover tokens hidden in its input.

    Args:
      seq_len: number of positions T (≥ 1).

    Returns:
      ``(T, T)`` bool, all True. Broadcasts against ``(B, H, T, T)``.

    Raises:
      ValueError: if ``seq_len`` is not an integer ≥ 1.

    Source: Devlin et al. 2019, "BERT", §3.1 (bidirectional self-attention, masked LM).
    """
    seq_len = _check_length("seq_len", seq_len)
    return jnp.ones((seq_len, seq_len), dtype=bool)


def cross_attention_mask(target_len: int, source_len: int) -> jax.Array:
    """Mask of encoder–decoder (cross) attention: every decoder position sees every input token.

    Queries come from the decoder (the output written so far), keys and values from the
    encoder's final vectors of the whole input, which is known in full before decoding starts.

    Args:
      target_len: T, number of decoder (query) positions (≥ 1).
      source_len: S, number of encoder (key) positions (≥ 1).

    Returns:
      ``(T, S)`` bool, all True. Broadcasts against ``(B, H, T, S)``.

    Raises:
      ValueError: if a length is not an integer ≥ 1.

    Source: Vaswani et al. 2017, §3.2.3; Raffel et al. 2020, "T5", §3.2.1.
    """
    target_len = _check_length("target_len", target_len)
    source_len = _check_length("source_len", source_len)
    return jnp.ones((target_len, source_len), dtype=bool)


def encoder_decoder_masks(source_len: int, target_len: int) -> dict[str, jax.Array]:
    """The three attention masks of an encoder–decoder transformer (T5, the original one).

    Args:
      source_len: S, length of the input the encoder reads (≥ 1).
      target_len: T, length of the output the decoder writes (≥ 1).

    Returns:
      ``{"encoder self-attention": (S, S)`` all True (:func:`bidirectional_mask`),
      ``"decoder self-attention": (T, T)`` lower-triangular (:func:`causal_mask`),
      ``"cross-attention": (T, S)`` all True (:func:`cross_attention_mask`) ``}``, bool.

    Raises:
      ValueError: if a length is not an integer ≥ 1.

    Source: Vaswani et al. 2017, §3.2.3; Raffel et al. 2020, "T5", §3.2.1 (masking patterns).
    """
    source_len = _check_length("source_len", source_len)
    target_len = _check_length("target_len", target_len)
    return {
        "encoder self-attention": bidirectional_mask(source_len),
        "decoder self-attention": causal_mask(target_len),
        "cross-attention": cross_attention_mask(target_len, source_len),
    }

"""Recurrent networks: the Elman RNN, the LSTM, and encoder–decoders with and without attention.

An RNN reads a sequence one step at a time and carries a hidden state from each step to the
next; the state after the last step is all it keeps of the sequence. An encoder–decoder
(:class:`Seq2Seq`) hands that one vector to a second RNN that writes the output. With
attention (:class:`AttentionSeq2Seq`) the decoder keeps every encoder state and, at each
output step, reads a weighted average of them.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``H`` hidden width
(``d_hidden``), ``V`` vocabulary. Sequences are ``(B, S, ...)``; a boolean ``mask`` ``(B, S)``
is True at real positions and False at padding (the date data pads at the end).

Sources: Elman 1990, "Finding Structure in Time"; Hochreiter & Schmidhuber 1997, "Long
Short-Term Memory" (with the forget gate of Gers, Schmidhuber & Cummins 2000); Sutskever,
Vinyals & Le 2014, "Sequence to Sequence Learning with Neural Networks"; Bahdanau, Cho &
Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and Translate".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from attnlab.attention import dot_product_score, masked_softmax

__all__ = [
    "LSTM",
    "AttentionSeq2Seq",
    "ElmanRNN",
    "Seq2Seq",
    "accuracy_by_length",
    "elman_step",
    "exact_match",
    "input_gradient_norms",
    "lstm_step",
    "make_rnn",
    "time_rnn_and_attention",
    "train_seq2seq",
    "translate",
]


# --- one step ---------------------------------------------------------------------------------


def elman_step(h: jax.Array, x: jax.Array, W_x: jax.Array, W_h: jax.Array,
               b: jax.Array) -> jax.Array:
    """One step of an Elman RNN: ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``.

    Args:
      h: ``(..., H)`` the previous hidden state h_{t-1}.
      x: ``(..., d_in)`` this step's input x_t.
      W_x: ``(d_in, H)``; W_h: ``(H, H)``; b: ``(H,)``.

    Returns:
      ``(..., H)`` the new hidden state h_t, each entry in (-1, 1).

    Source: Elman 1990 (written with row vectors, so the matrices multiply from the right).
    """
    return jnp.tanh(x @ W_x + h @ W_h + b)


def lstm_step(h: jax.Array, c: jax.Array, x: jax.Array, W_x: jax.Array, W_h: jax.Array,
              b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One step of an LSTM with a forget gate.

    ``z = x_t W_x + h_{t-1} W_h + b`` is split into four ``H``-wide parts, in the order
    i, f, g, o::

      i = σ(z_i)   input gate: how much of the candidate to write
      f = σ(z_f)   forget gate: how much of the old cell state to keep
      g = tanh(z_g) candidate values
      o = σ(z_o)   output gate: how much of the cell to show
      c_t = f ⊙ c_{t-1} + i ⊙ g
      h_t = o ⊙ tanh(c_t)

    Args:
      h, c: ``(..., H)`` the previous hidden state and cell state.
      x: ``(..., d_in)`` this step's input.
      W_x: ``(d_in, 4H)``; W_h: ``(H, 4H)``; b: ``(4H,)`` (gates i, f, g, o side by side).

    Returns:
      ``(h_t, c_t)``, each ``(..., H)``.

    Source: Hochreiter & Schmidhuber 1997; the forget gate from Gers et al. 2000. The gate
    order is PyTorch's ``nn.LSTM`` order.
    """
    z = x @ W_x + h @ W_h + b
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    h = jax.nn.sigmoid(z_o) * jnp.tanh(c)
    return h, c


# --- the two recurrent layers -----------------------------------------------------------------


def _check_sequence(x: jax.Array, d_in: int, mask) -> None:
    if x.ndim != 3 or x.shape[-1] != d_in:
        raise ValueError(f"x must have shape (B, S, {d_in}); got {tuple(x.shape)}.")
    if mask is not None and (jnp.shape(mask) != x.shape[:2] or jnp.asarray(mask).dtype != bool):
        raise ValueError(
            f"mask must be a bool array of shape (B, S) = {tuple(x.shape[:2])}; got "
            f"{jnp.shape(mask)} {jnp.asarray(mask).dtype}."
        )


def _scan(step: Callable, state, x: jax.Array, mask: jax.Array | None, output: Callable):
    """Run ``state = step(state, x_t)`` over the time axis of ``x`` ``(B, S, d)``.

    At padded steps (``mask[:, t]`` False) the state is carried over unchanged, so the final
    state is the state after each sequence's last real step. Returns the per-step outputs
    ``(B, S, H)`` and the final state.
    """
    if mask is None:
        mask = jnp.ones(x.shape[:2], bool)

    def body(state, inputs):
        x_t, real = inputs
        new = step(state, x_t)
        new = jax.tree.map(lambda n, o: jnp.where(real[:, None], n, o), new, state)
        return new, output(new)

    final, outputs = jax.lax.scan(body, state, (jnp.swapaxes(x, 0, 1), jnp.swapaxes(mask, 0, 1)))
    return jnp.swapaxes(outputs, 0, 1), final


class ElmanRNN(nnx.Module):
    """An Elman RNN layer: :func:`elman_step` applied along a sequence.

    Args:
      d_in: input width; d_hidden: hidden width H.
      rngs: ``nnx.Rngs`` for the initial weights (``W_x`` LeCun-normal, ``W_h`` orthogonal,
        ``b`` zero: the defaults of ``flax.nnx.SimpleCell``).

    Attributes:
      W_x ``(d_in, H)``, W_h ``(H, H)``, b ``(H,)``: ``nnx.Param``.

    The state is the hidden vector h ``(B, H)``.
    """

    def __init__(self, d_in: int, d_hidden: int, *, rngs: nnx.Rngs):
        _check_sizes(d_in=d_in, d_hidden=d_hidden)
        self.d_in, self.d_hidden = d_in, d_hidden
        self.W_x = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (d_in, d_hidden)))
        self.W_h = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (d_hidden, d_hidden)))
        self.b = nnx.Param(jnp.zeros((d_hidden,)))

    def initial_state(self, batch_size: int) -> jax.Array:
        """Zeros ``(B, H)``."""
        return jnp.zeros((batch_size, self.d_hidden))

    def step(self, state: jax.Array, x: jax.Array) -> jax.Array:
        """One step: ``(B, H)``, ``(B, d_in)`` → ``(B, H)``."""
        return elman_step(state, x, self.W_x[...], self.W_h[...], self.b[...])

    @staticmethod
    def output(state: jax.Array) -> jax.Array:
        """The hidden vector that the next layer sees: the state itself."""
        return state

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, state=None):
        """Run over a sequence.

        Args:
          x: ``(B, S, d_in)``; mask: optional ``(B, S)`` bool, False at padding; state:
            optional initial state (default zeros).

        Returns:
          ``(outputs, final_state)``: outputs ``(B, S, H)`` (h_t at every step), final_state
          ``(B, H)``, the state after each sequence's last real step.

        Raises:
          ValueError: if ``x`` or ``mask`` has the wrong shape.
        """
        _check_sequence(x, self.d_in, mask)
        state = self.initial_state(x.shape[0]) if state is None else state
        return _scan(self.step, state, x, mask, self.output)


class LSTM(nnx.Module):
    """An LSTM layer: :func:`lstm_step` applied along a sequence.

    Args:
      d_in: input width; d_hidden: hidden width H.
      forget_bias: initial bias of the forget gate (default 1.0, so that f ≈ 0.73 at the
        start and the cell keeps most of its content; Jozefowicz, Zaremba & Sutskever 2015).
      rngs: ``nnx.Rngs`` for the initial weights (``W_x`` LeCun-normal, ``W_h`` orthogonal
        per gate, other biases zero).

    Attributes:
      W_x ``(d_in, 4H)``, W_h ``(H, 4H)``, b ``(4H,)``: ``nnx.Param``, gates i, f, g, o side by
      side.

    The state is the pair ``(h, c)``, each ``(B, H)``; the layer's output at each step is h.
    """

    def __init__(self, d_in: int, d_hidden: int, *, forget_bias: float = 1.0, rngs: nnx.Rngs):
        _check_sizes(d_in=d_in, d_hidden=d_hidden)
        self.d_in, self.d_hidden = d_in, d_hidden
        H = d_hidden
        self.W_x = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (d_in, 4 * H)))
        orthogonal = nnx.initializers.orthogonal()
        self.W_h = nnx.Param(jnp.concatenate(
            [orthogonal(rngs.params(), (H, H)) for _ in range(4)], axis=1))
        self.b = nnx.Param(jnp.zeros((4 * H,)).at[H : 2 * H].set(forget_bias))

    def initial_state(self, batch_size: int) -> tuple[jax.Array, jax.Array]:
        """``(h, c)``, zeros ``(B, H)`` each."""
        zeros = jnp.zeros((batch_size, self.d_hidden))
        return zeros, zeros

    def step(self, state, x):
        """One step: ``(h, c)``, ``(B, d_in)`` → ``(h, c)``."""
        h, c = state
        return lstm_step(h, c, x, self.W_x[...], self.W_h[...], self.b[...])

    @staticmethod
    def output(state) -> jax.Array:
        """The hidden vector h that the next layer sees (the cell state c stays inside)."""
        return state[0]

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, state=None):
        """Run over a sequence; as :meth:`ElmanRNN.__call__`, with the state ``(h, c)``."""
        _check_sequence(x, self.d_in, mask)
        state = self.initial_state(x.shape[0]) if state is None else state
        return _scan(self.step, state, x, mask, self.output)


#: The recurrent layers by name.
CELLS = {"rnn": ElmanRNN, "lstm": LSTM}


def make_rnn(cell: str, d_in: int, d_hidden: int, *, rngs: nnx.Rngs) -> ElmanRNN | LSTM:
    """``"rnn"`` → :class:`ElmanRNN`, ``"lstm"`` → :class:`LSTM`.

    Raises:
      ValueError: for another name.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got {cell!r}.")
    return CELLS[cell](d_in, d_hidden, rngs=rngs)


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


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


# --- training and evaluation on the date task -------------------------------------------------


def _loss(model: Seq2Seq, source, lengths, target):
    target_in = jnp.concatenate([jnp.zeros_like(target[:, :1]), target[:, :-1]], axis=1)
    logits = model(source, lengths, target_in)
    return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()


@nnx.jit
def _train_step(model, optimizer, source, lengths, target):
    loss, grads = nnx.value_and_grad(_loss)(model, source, lengths, target)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def _eval_loss(model, source, lengths, target):
    return _loss(model, source, lengths, target)


def train_seq2seq(model: Seq2Seq, data, *, steps: int, batch_size: int = 64,
                  learning_rate: float = 3e-3, seed: int = 0, validation=None,
                  eval_interval: int = 100, progress: bool = True):
    """Train an encoder–decoder in place with Adam on random batches of ``data``.

    Args:
      model: a :class:`Seq2Seq` or :class:`AttentionSeq2Seq`.
      data: an :class:`attnlab.data.DateArrays` (``source (N, S)``, ``lengths (N,)``,
        ``target (N, T)``).
      steps: optimizer steps (≥ 1); batch_size: pairs per step (≥ 1).
      learning_rate: Adam's first step size; it decays along a cosine to a tenth of that by
        the last step. The gradient's global norm is clipped to 1 (recurrent networks
        occasionally produce very large gradients).
      seed: seeds the batch order; same seed and model initialisation, same losses.
      validation: optional ``DateArrays`` whose loss is measured every ``eval_interval`` steps
        and at the end.
      progress: show a ``tqdm.auto`` progress bar.

    Returns:
      an :class:`attnlab.train.History` (per-step training loss in nats per output
      character, validation losses, time), ready for :func:`attnlab.viz.plot_history`.

    Raises:
      ValueError: if ``steps``, ``batch_size`` or ``eval_interval`` is below 1.
    """
    from tqdm.auto import tqdm

    from attnlab.train import History

    _check_sizes(steps=steps, batch_size=batch_size, eval_interval=eval_interval)
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.1)
    optimizer = nnx.Optimizer(
        model, optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule)), wrt=nnx.Param)
    source, lengths, target = (jnp.asarray(a) for a in data[:3])
    rng = np.random.default_rng(seed)
    history = History()
    start = time.perf_counter()

    def validate(step):
        if validation is not None:
            history.val_steps.append(step)
            history.val_loss.append(float(_eval_loss(model, *(jnp.asarray(a)
                                                              for a in validation[:3]))))

    validate(0)
    pending = []
    for step in (bar := tqdm(range(1, steps + 1), disable=not progress, desc="training")):
        rows = jnp.asarray(rng.integers(0, len(source), batch_size))
        pending.append(_train_step(model, optimizer, source[rows], lengths[rows], target[rows]))
        if step % eval_interval == 0 or step == steps:
            losses = np.asarray(jax.device_get(jnp.stack(pending)), float).tolist()
            history.steps.extend(range(step - len(losses) + 1, step + 1))
            history.train_loss.extend(losses)
            pending.clear()
            validate(step)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    history.elapsed_s = time.perf_counter() - start
    history.tokens_seen = steps * batch_size * int(target.shape[1])
    return history


@nnx.jit(static_argnames="n_steps")
def _greedy(model, source, lengths, n_steps):
    logits, weights = model.decode(source, lengths, None, n_steps=n_steps)
    return jnp.argmax(logits, -1), weights


def translate(model: Seq2Seq, source, lengths, *, n_steps: int = 10, batch_size: int = 512):
    """Greedy translation: at each step take the most likely character and feed it back.

    Args:
      model: a trained :class:`Seq2Seq` or :class:`AttentionSeq2Seq`.
      source: ``(N, S)`` int ids; lengths: ``(N,)`` int.
      n_steps: output length T (10 for ISO dates).
      batch_size: rows per compiled call (the last chunk is padded, so there is one compile).

    Returns:
      ``(ids, weights)``: ids ``(N, T)`` int NumPy array; weights ``(N, T, S)`` NumPy attention
      weights for an :class:`AttentionSeq2Seq`, else ``None``.

    Raises:
      ValueError: if the shapes do not fit, N is 0, or a length is outside ``[1, S]``.
    """
    source, lengths = np.asarray(source, np.int32), np.asarray(lengths, np.int32)
    if source.ndim != 2 or lengths.shape != source.shape[:1] or len(source) == 0:
        raise ValueError(f"source must be (N, S) and lengths (N,) with N >= 1; got "
                         f"{source.shape} and {lengths.shape}.")
    if lengths.min() < 1 or lengths.max() > source.shape[1]:
        raise ValueError(f"lengths must be between 1 and S = {source.shape[1]}; got "
                         f"{lengths.min()} to {lengths.max()}.")
    N = len(source)
    chunk = min(batch_size, N)
    pad = (-N) % chunk
    source = np.concatenate([source, np.zeros((pad, source.shape[1]), np.int32)])
    lengths = np.concatenate([lengths, np.ones(pad, np.int32)])
    ids, weights = [], []
    for i in range(0, len(source), chunk):
        out, w = _greedy(model, source[i : i + chunk], lengths[i : i + chunk], n_steps)
        ids.append(np.asarray(out))
        weights.append(None if w is None else np.asarray(w))
    ids = np.concatenate(ids)[:N]
    return ids, (None if weights[0] is None else np.concatenate(weights)[:N])


def exact_match(model: Seq2Seq, data) -> np.ndarray:
    """Per pair: did greedy translation write the whole target right? ``(N,)`` bool."""
    ids, _ = translate(model, data[0], data[1], n_steps=int(np.shape(data[2])[1]))
    return (ids == np.asarray(data[2])).all(axis=1)


def accuracy_by_length(correct, lengths, edges: Sequence[int]):
    """Exact-match accuracy of pairs grouped by source length.

    Args:
      correct: ``(N,)`` bool, e.g. from :func:`exact_match`; lengths: ``(N,)`` source lengths.
      edges: increasing bin edges; bin k holds lengths in ``[edges[k], edges[k+1])``.

    Returns:
      ``(accuracy, counts)``, each ``(len(edges) - 1,)``: the fraction correct in each bin
      (NaN for an empty bin) and the number of pairs in it.

    Raises:
      ValueError: if the shapes differ or ``edges`` is not increasing with at least 2 entries.
    """
    correct, lengths = np.asarray(correct, bool), np.asarray(lengths)
    edges = np.asarray(edges)
    if correct.shape != lengths.shape or correct.ndim != 1:
        raise ValueError(f"correct and lengths must be 1-D of the same length; got "
                         f"{correct.shape} and {lengths.shape}.")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be increasing, at least 2 of them; got {edges.tolist()}.")
    bins = np.digitize(lengths, edges) - 1
    counts = np.array([(bins == k).sum() for k in range(len(edges) - 1)])
    hits = np.array([correct[bins == k].sum() for k in range(len(edges) - 1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan), counts


# --- measurements -----------------------------------------------------------------------------


def input_gradient_norms(rnn: ElmanRNN | LSTM, x: jax.Array) -> jax.Array:
    """How strongly the final hidden state depends on the input at each earlier step.

    For each sequence and each step t, the Frobenius norm of the Jacobian ∂h_S / ∂x_t of the
    last hidden state h_S ``(H,)`` with respect to the input x_t ``(d_in,)``: the size of
    the gradient that training can send from the end of the sequence back to step t.

    Args:
      rnn: an :class:`ElmanRNN` or :class:`LSTM`.
      x: ``(B, S, d_in)`` inputs (no padding).

    Returns:
      ``(B, S)`` float norms; entry ``[b, t]`` belongs to the step ``S - 1 - t`` steps before
      the last one.

    Source: the vanishing-gradient analysis of Bengio, Simard & Frasconi 1994 and Hochreiter
    & Schmidhuber 1997, measured here with ``jax.jacrev``.
    """
    _check_sequence(jnp.asarray(x), rnn.d_in, None)
    return _gradient_norms(rnn, jnp.asarray(x))


@nnx.jit
def _gradient_norms(rnn, x):
    def last_state(seq):  # (S, d_in) -> (H,)
        outputs, _ = rnn(seq[None])
        return outputs[0, -1]

    jac = jax.vmap(jax.jacrev(last_state))(x)  # (B, H, S, d_in)
    return jnp.sqrt((jac**2).sum(axis=(1, 3)))


def time_rnn_and_attention(lengths: Sequence[int], *, d_model: int = 64, batch_size: int = 8,
                           repeats: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Wall-clock time of one forward pass of an LSTM layer and of a self-attention layer.

    Both are compiled with ``jax.jit`` once per length before timing; each figure is the
    median of ``repeats`` runs, waiting for the result (``block_until_ready``). The LSTM has
    to take its S steps one after another; self-attention computes all S positions at once
    (:class:`attnlab.attention.MultiHeadAttention`, 4 heads).

    Args:
      lengths: sequence lengths S to time (each ≥ 1).
      d_model: width of both layers; batch_size: sequences per pass; repeats: timed runs.
      seed: seeds the weights and inputs.

    Returns:
      ``{"length": (n,), "rnn_s": (n,), "attention_s": (n,)}``, times in seconds.

    Raises:
      ValueError: if a length, ``d_model``, ``batch_size`` or ``repeats`` is below 1.
    """
    from attnlab.attention import MultiHeadAttention

    _check_sizes(d_model=d_model, batch_size=batch_size, repeats=repeats)
    for S in lengths:
        _check_sizes(length=S)
    rngs = nnx.Rngs(seed)
    lstm = LSTM(d_model, d_model, rngs=rngs)
    attention = MultiHeadAttention(d_model, 4, rngs=rngs)
    run_lstm = nnx.jit(lambda m, x: m(x)[0])
    run_attention = nnx.jit(lambda m, x: m(x))
    result = {"length": np.asarray(lengths), "rnn_s": [], "attention_s": []}
    for S in lengths:
        x = jax.random.normal(jax.random.key(seed), (batch_size, S, d_model))
        for name, fn, module in (("rnn_s", run_lstm, lstm), ("attention_s", run_attention,
                                                              attention)):
            fn(module, x).block_until_ready()  # compile
            times = []
            for _ in range(repeats):
                begin = time.perf_counter()
                fn(module, x).block_until_ready()
                times.append(time.perf_counter() - begin)
            result[name].append(float(np.median(times)))
    return {k: np.asarray(v) for k, v in result.items()}


# --- the date task as text --------------------------------------------------------------------

__all__ += ["translate_texts"]


def translate_texts(model: Seq2Seq, texts: Sequence[str], *, max_len: int = 64):
    """Translate date texts with a model trained on :func:`attnlab.data.make_dates` pairs.

    Args:
      model: a trained :class:`Seq2Seq` or :class:`AttentionSeq2Seq`.
      texts: the inputs, e.g. ``["3 Sep 2021"]``; each 1 to ``max_len`` characters from
        :data:`attnlab.data.DATE_SOURCE_CHARS` (``"_"`` excepted).
      max_len: the padded source length (that of the training data, so that no new shape is
        compiled).

    Returns:
      ``(predictions, weights)``: the N output texts, and for an :class:`AttentionSeq2Seq` a
      list of N ``(10, len(text))`` NumPy attention weights (padding columns dropped), else a
      list of N ``None``.

    Raises:
      ValueError: if a text is empty, longer than ``max_len``, or has characters the model
        cannot read; the message says which.
    """
    from attnlab.data import date_source_tokenizer, date_target_tokenizer

    source_tok, target_tok = date_source_tokenizer(), date_target_tokenizer()
    texts = list(texts)
    source = np.zeros((len(texts), max_len), np.int32)
    for i, text in enumerate(texts):
        if not text:
            raise ValueError("The text is empty: type a date, e.g. '3 Sep 2021'.")
        if len(text) > max_len:
            raise ValueError(f"The text has {len(text)} characters; the model reads at most "
                             f"{max_len}.")
        unknown = sorted(set(text) - set(source_tok.vocab[1:]))
        if unknown:
            raise ValueError(f"The model cannot read {''.join(unknown)!r}: it knows letters, "
                             "digits, spaces and , . / - ( ).")
        source[i, : len(text)] = source_tok.encode(text)
    lengths = np.array([len(t) for t in texts], np.int32)
    ids, weights = translate(model, source, lengths)
    predictions = [target_tok.decode(row) for row in ids]
    if weights is None:
        return predictions, [None] * len(texts)
    return predictions, [w[:, : len(t)] for w, t in zip(weights, texts, strict=True)]

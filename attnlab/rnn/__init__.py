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

One module per idea (import from here, e.g. ``from attnlab.rnn import LSTM``):

- :mod:`attnlab.rnn.cells` — one step, :func:`elman_step` and :func:`lstm_step` (notebook 02),
  and the layers that run them along a sequence, :class:`ElmanRNN` and :class:`LSTM`, made by
  name with :func:`make_rnn` (``CELLS``);
- :mod:`attnlab.rnn.seq2seq` — :class:`Seq2Seq`, the encoder–decoder without attention and its
  bottleneck (notebook 02);
- :mod:`attnlab.rnn.attention_seq2seq` — :class:`AttentionSeq2Seq`, the encoder–decoder with
  attention (notebook 03);
- :mod:`attnlab.rnn.training` — the date task (notebooks 02 and 03): :func:`train_seq2seq`,
  greedy :func:`translate`, :func:`exact_match`, :func:`accuracy_by_length`, and
  :func:`translate_texts` for typed dates;
- :mod:`attnlab.rnn.measure` — :func:`input_gradient_norms` (notebook 02) and
  :func:`time_rnn_and_attention` (notebook 03).
"""

from attnlab.rnn.attention_seq2seq import AttentionSeq2Seq
from attnlab.rnn.cells import CELLS as CELLS
from attnlab.rnn.cells import LSTM, ElmanRNN, elman_step, lstm_step, make_rnn
from attnlab.rnn.measure import input_gradient_norms, time_rnn_and_attention
from attnlab.rnn.seq2seq import Seq2Seq
from attnlab.rnn.training import (
    accuracy_by_length,
    exact_match,
    train_seq2seq,
    translate,
    translate_texts,
)

__all__ = [
    # steps and layers
    "LSTM", "ElmanRNN", "elman_step", "lstm_step", "make_rnn",
    # encoder–decoders without and with attention
    "Seq2Seq", "AttentionSeq2Seq",
    # training and evaluation on the date task
    "accuracy_by_length", "exact_match", "train_seq2seq", "translate", "translate_texts",
    # measurements
    "input_gradient_norms", "time_rnn_and_attention",
]

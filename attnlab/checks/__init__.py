"""Exercise checkers: compare a learner's function with the reference on random inputs.

An exercise in a notebook asks the learner to write a function (say, ``softmax``). The cell
after it calls :func:`check_function` (or :func:`attnlab.exercises.check_exercise`, which
fills in the reference and the inputs) with the learner's function. The checker runs both on
the same random inputs and, at the first difference, says in plain words what differs and,
where it can tell, why:

- the structure, shape or dtype of the output, naming a shape by the inputs it comes from
  ("(2, 8) is the shape of targets (B, T)");
- an exception, with the learner's line, and for a broadcasting error the likely missing
  ``keepdims=True``;
- NaN or ±inf where the reference has a number: the checker runs the learner's function once
  more with JAX's and NumPy's floating-point checks on, finds the first operation that made a
  non-finite value, and tells an overflow (``exp`` of a large number → inf, then inf/inf → NaN)
  from the log of a number that underflowed to 0 (``log(0) = -inf``);
- values off by a factor, but only when every compared value, on this trial and on a few
  further random inputs, shows the same factor and that factor is one a learner could have
  introduced: the sign (-1), ln 2 (bits vs nats), ln 10, or a size taken from the inputs'
  shapes ("16 = B·T = 2 × 8: a sum where a mean was wanted?");
- otherwise the difference, plainly: the largest difference, where, the learner's value and
  the expected one.

The result shows as a green or red box when it is the last expression of a cell.

One module per step of a check (import from here, e.g.
``from attnlab.checks import check_function``):

- :mod:`attnlab.checks.result` — :class:`CheckResult`, the verdict (a green or red box);
- :mod:`attnlab.checks.inputs` — :func:`random_inputs`; copying and describing a trial's
  inputs, the learner's line in an error, what the inputs' shapes and sizes tell the hints;
- :mod:`attnlab.checks.compare` — one output against the reference: structure, shape (named
  by the inputs it comes from), dtype, values;
- :mod:`attnlab.checks.nonfinite` — NaN and inf: the operation that made the first one;
- :mod:`attnlab.checks.factors` — values off by a factor a learner could have introduced;
- :mod:`attnlab.checks.check` — :func:`check_function`, which runs the trials and names the
  first difference.

Example (in a notebook cell)::

    from attnlab.checks import check_function, random_inputs

    check_function(my_softmax, jax.nn.softmax, random_inputs((4, 7)))
"""

from attnlab.checks.check import check_function
from attnlab.checks.inputs import random_inputs
from attnlab.checks.result import CheckResult

__all__ = ["CheckResult", "check_function", "random_inputs"]

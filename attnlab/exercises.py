"""The notebooks' exercises: each one's reference, its random inputs, and a one-call checker.

An exercise lives here, not in its notebook, so that the notebook and the tests check a
learner's function in exactly the same way: the notebook calls ``check_exercise(name, fn)``,
and ``tests/test_exercises.py`` feeds the same checker a list of typical wrong solutions and
asserts the hint each one gets.

Example (in a notebook cell)::

    from attnlab.exercises import check_exercise

    check_exercise("cross_entropy", my_cross_entropy)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attnlab.checks import CheckResult, check_function

__all__ = ["EXERCISES", "Exercise", "check_exercise"]


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner writes and how it is checked.

    Attributes:
      name: the key in :data:`EXERCISES`, e.g. ``"cross_entropy"``.
      notebook: the notebook that asks for it, e.g. ``"07"``.
      task: one line, what the learner's function must do.
      reference: the correct function.
      inputs: ``key -> inputs`` for :func:`attnlab.checks.check_function`; the reference's
        parameter names name them in the checker's messages.
      axis_names: names of the array inputs' axes, e.g. ``{"logits": ("B", "T", "V")}``, so
        that hints say "16 = B·T" rather than "axes 0 and 1".
      n_trials, rtol, atol: passed to :func:`attnlab.checks.check_function`.
      diagnose: optional ``learner_fn -> str | None``, run when the check fails: it probes the
        learner's function on known cases and returns one sentence naming a typical mistake
        (shown first, as "Likely cause: ..."), or ``None`` when it recognises none.
    """

    name: str
    notebook: str
    task: str
    reference: Callable
    inputs: Callable[[jax.Array], Any]
    axis_names: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    n_trials: int = 20
    rtol: float = 1e-5
    atol: float = 1e-6
    diagnose: Callable[[Callable], str | None] | None = None


# --- 07 · the training loss ---------------------------------------------------------------------

#: Vocabulary size of the cross-entropy exercise (the notebooks' character vocabulary).
_CE_VOCAB = 96


def _cross_entropy_inputs(key: jax.Array):
    """Logits ``(2, 8, 96)`` at one of three scales (1, 10, 200: at 200 a naive ``exp``
    overflows, and softmax probabilities of unlikely targets underflow to 0) and int targets
    ``(2, 8)``."""
    k_scale, k_logits, k_targets = jax.random.split(key, 3)
    scale = jax.random.choice(k_scale, jnp.array([1.0, 10.0, 200.0]))
    logits = scale * jax.random.normal(k_logits, (2, 8, _CE_VOCAB))
    return logits, jax.random.randint(k_targets, (2, 8), 0, _CE_VOCAB)


def _cross_entropy_reference(logits, targets):
    from attnlab.train import cross_entropy

    return cross_entropy(logits, targets)


_ALL = [
    Exercise(
        name="cross_entropy",
        notebook="07",
        task="mean next-token cross-entropy in nats: logits (B, T, V), int targets (B, T) -> scalar",
        reference=_cross_entropy_reference,
        inputs=_cross_entropy_inputs,
        axis_names={"logits": ("B", "T", "V"), "targets": ("B", "T")},
    ),
]

#: Every exercise of the course, by name.
EXERCISES: Mapping[str, Exercise] = {e.name: e for e in _ALL}


def check_exercise(name: str, fn: Callable, **overrides) -> CheckResult:
    """Check a learner's ``fn`` for the exercise ``name`` against its reference.

    Args:
      name: a key of :data:`EXERCISES`.
      fn: the learner's function.
      **overrides: keyword arguments for :func:`attnlab.checks.check_function` (``seed``,
        ``n_trials``, ...), replacing the exercise's own.

    Returns:
      a :class:`attnlab.checks.CheckResult` (a green or red box in a notebook).

    Raises:
      KeyError: if ``name`` is not an exercise; the message lists the ones that exist.
      TypeError, ValueError: for bad ``overrides``, as :func:`attnlab.checks.check_function`.
    """
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are {sorted(EXERCISES)}.")
    exercise = EXERCISES[name]
    options = dict(n_trials=exercise.n_trials, rtol=exercise.rtol, atol=exercise.atol,
                   axis_names=exercise.axis_names)
    result = check_function(fn, exercise.reference, exercise.inputs, **{**options, **overrides})
    if result.passed or exercise.diagnose is None:
        return result
    hint = exercise.diagnose(fn)
    if hint is None:
        return result
    return CheckResult(False, f"Likely cause: {hint}\n\n{result.message}", result.inputs)


# --- 08 · top-p (nucleus) filtering ---------------------------------------------------------------


def _top_p_inputs(key: jax.Array):
    """probs ``(4, 12)`` float32, each row a softmax of random logits at one of three
    sharpnesses (rows sum to 1, no zeros, no ties), and a float ``top_p`` drawn from
    {0.05 (below every row's largest probability here), 0.3, 0.6, 0.9, 1.0} or uniform in
    (0, 1), rounded to 3 digits so that messages show a readable number. Drawn with NumPy
    from the key: nothing to compile."""
    import numpy as np

    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    logits = rng.choice([0.5, 1.5, 3.0]) * rng.standard_normal((4, 12))
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)
    top_p = (0.05, 0.3, 0.6, 0.9, 1.0, None)[int(rng.integers(6))]
    if top_p is None:
        top_p = round(float(rng.uniform(0.01, 0.99)), 3)
    return jnp.asarray(probs), top_p


@jax.jit
def _top_p_reference(probs, top_p):
    """The package's top-p (on log-probabilities, so softmax gives back ``probs``), then the
    softmax that renormalises. Jitted with a traced ``top_p``: one compilation."""
    from attnlab.sampling import top_p_filter

    return jax.nn.softmax(top_p_filter(jnp.log(probs), top_p), axis=-1)


#: Two rows of the same five probabilities in different orders, so that the likely mistakes
#: keep different, recognisable sets of tokens. Sorted: 0.4, 0.25, 0.2, 0.1, 0.05; running
#: totals 0.4, 0.65, 0.85, 0.95, 1. So top_p = 0.6 keeps {0.4, 0.25}, 0.75 keeps
#: {0.4, 0.25, 0.2}, and 0.3 (below the largest probability) keeps {0.4}.
_TOP_P_PROBE = ((0.2, 0.05, 0.4, 0.1, 0.25), (0.1, 0.25, 0.05, 0.4, 0.2))


def _top_p_diagnosis(fn: Callable) -> str | None:
    """Name a typical top-p mistake from ``fn``'s outputs on :data:`_TOP_P_PROBE`, or None."""
    import numpy as np

    probs = np.asarray(_TOP_P_PROBE, dtype=np.float32)

    def run(x, top_p):
        with np.errstate(all="ignore"):
            out = np.asarray(fn(jnp.asarray(x), top_p), dtype=np.float64)
        if out.shape != x.shape:
            raise ValueError("another shape: the checker's message covers it")
        return out

    def kept(out):  # per row, the set of tokens given a positive probability
        return [set(np.flatnonzero(np.nan_to_num(row, nan=0.0, neginf=0.0) > 0)) for row in out]

    def first(order, row, top_p, *, crossing):  # the first tokens of `order` a rule keeps
        mass = np.cumsum(row[order])
        before = mass - row[order]
        return set(order[: int(np.sum((before if crossing else mass) < top_p))].tolist())

    def every_row(out, top_p, rule) -> bool:  # rule(row, kept set, top_p) holds on each row
        return all(rule(row, got, top_p) for row, got in zip(probs, kept(out), strict=True))

    def expected(top_p):
        return np.asarray(_top_p_reference(jnp.asarray(probs), top_p), dtype=np.float64)

    try:
        out = {top_p: run(probs, top_p) for top_p in (0.3, 0.6, 0.75)}
        same_rows = run(np.repeat(probs[:1], 3, axis=0), 0.6)
    except Exception:  # the checker's own message says what went wrong
        return None
    if all(np.allclose(out[p], expected(p), rtol=1e-4, atol=1e-6) for p in out):
        return None  # right on the probes: whatever differs, these hints do not fit
    if not np.allclose(same_rows, same_rows[:1], rtol=1e-4, atol=1e-6, equal_nan=True):
        return ("Your function gives different answers for identical rows, so the rows "
                "influence each other: a sort, cumsum, sum or max runs over the wrong axis. "
                "Each row is one distribution: work along the last axis (axis=-1), with "
                "keepdims=True where you divide.")
    if any(np.isneginf(o).any() for o in out.values()):
        return ("Your function gives -inf to the filtered tokens. This exercise returns "
                "probabilities: a filtered token gets probability 0 (-inf is what a filter on "
                "logits uses).")
    nothing_for_small_p = any(not s for s in kept(out[0.3]))
    small_p_text = ("On a test row whose largest probability is 0.4, top_p = 0.3 keeps no token "
                    "at all, so there is nothing left to sample from.")

    def strict(row, got, top_p):
        return got == first(np.argsort(-row), row, top_p, crossing=False)

    if every_row(out[0.6], 0.6, strict) and every_row(out[0.75], 0.75, strict):
        return ("Your function drops the token that crosses top_p. Keep a token while the mass "
                "of the tokens *before* it is still below top_p (cumsum - probs < top_p): the "
                "token that brings the total to top_p or above belongs to the nucleus."
                + (f" {small_p_text}" if nothing_for_small_p else ""))
    if nothing_for_small_p:
        return (f"{small_p_text} The most likely token must always stay: keep a token while "
                "the mass of the tokens before it is below top_p.")

    def ascending(row, got, top_p):
        return any(got == first(np.argsort(row), row, top_p, crossing=c) for c in (True, False))

    if every_row(out[0.6], 0.6, ascending):
        return ("Your function keeps the least likely tokens: the probabilities were sorted in "
                "ascending order (jnp.sort and jnp.argsort sort ascending). Go from the most "
                "likely down: jnp.argsort(-probs), or reverse with [..., ::-1].")

    def sorted_positions(row, got, top_p):
        return any(got == set(range(len(first(np.argsort(-row), row, top_p, crossing=c))))
                   for c in (True, False))

    if every_row(out[0.6], 0.6, sorted_positions):
        return ("Your function keeps the right number of tokens, but at the wrong places: the "
                "mask was made in sorted order and applied in vocabulary order. Put it back "
                "with the sort indices (e.g. jnp.zeros_like(mask).at[order].set(mask_sorted)), "
                "or keep the tokens whose probability is at least the smallest kept one.")
    right = expected(0.6)
    if kept(out[0.6]) == kept(right):
        masked = np.where(right > 0, probs, 0.0)
        if np.allclose(out[0.6], masked, rtol=1e-4, atol=1e-6):
            return (f"Your function keeps the right tokens but does not renormalise: on a test "
                    f"row with top_p = 0.6 its output adds up to {out[0.6][0].sum():.2f}, not 1. "
                    "Divide the kept probabilities by their sum, so that they form a "
                    "distribution to sample from.")
        soft = np.where(right > 0, np.exp(probs), 0.0)
        if np.allclose(out[0.6], soft / soft.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6):
            return ("Your function keeps the right tokens, but renormalises with a softmax of "
                    "the probabilities; softmax is for logits. Divide the kept probabilities "
                    "by their sum instead.")
    return None


_ALL.append(
    Exercise(
        name="top_p",
        notebook="08",
        task="nucleus (top-p) filter on probabilities: probs (B, V) rows summing to 1, top_p in "
        "(0, 1] -> (B, V): in each row the fewest most likely tokens whose probabilities add up "
        "to >= top_p keep their probability, renormalised to sum to 1; every other token 0",
        reference=_top_p_reference,
        inputs=_top_p_inputs,
        axis_names={"probs": ("B", "V")},
        diagnose=_top_p_diagnosis,
    )
)
EXERCISES = {e.name: e for e in _ALL}

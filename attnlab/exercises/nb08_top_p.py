"""Notebook 08's exercise (``top_p``): nucleus (top-p) filtering of probabilities.

In each row the learner keeps the fewest most likely tokens whose probabilities add up to at
least ``top_p``, renormalised to sum to 1, and gives every other token 0. Its hints come from
probing the learner's function (:func:`_top_p_diagnosis`), not from a list of mistakes.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from attnlab.exercises._core import Exercise


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
        out = {top_p: run(probs, top_p) for top_p in (0.3, 0.45, 0.6, 0.75)}
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

    def descending(row, n):  # the n most likely tokens of row
        return set(np.argsort(-row)[: max(1, min(n, len(row)))].tolist())

    def n_right(row, top_p):
        return len(first(np.argsort(-row), row, top_p, crossing=True))

    def everywhere(rule) -> bool:  # rule(row, kept set, top_p) holds for every row and top_p
        return all(every_row(o, p, rule) for p, o in out.items())

    if everywhere(lambda row, got, p: got == descending(row, n_right(row, p) + 1)):
        return ("Your function keeps one token too many: the token that brings the total to "
                "top_p or above is the last one in. Keep a token while the mass of the tokens "
                "*before* it is below top_p (cumsum - probs < top_p).")

    def as_logits(row, got, p):  # the right rule, run on softmax(probs)
        soft = np.exp(row) / np.exp(row).sum()
        return got == first(np.argsort(-soft), soft, p, crossing=True)

    if everywhere(as_logits):
        return ("Your function applies a softmax to probs, as if they were logits. They are "
                "probabilities already (each row adds up to 1); a softmax flattens them, so the "
                "nucleus comes out too big. Sort and add up probs itself.")
    if everywhere(lambda row, got, p: got == set(np.flatnonzero(row >= p).tolist())
                  | {int(np.argmax(row))}):
        return ("Your function compares each probability with top_p on its own. Top-p adds the "
                "probabilities up: take tokens from the most likely down until their total "
                "reaches top_p.")
    for rounding in (np.floor, np.round):
        if everywhere(lambda row, got, p, r=rounding: got == descending(row, int(r(p * len(row))))):
            return ("Your function keeps a fixed share of the vocabulary (top_p × V tokens): "
                    "that is top-k with k = top_p·V. Top-p adds up probabilities from the most "
                    "likely token down until the total reaches top_p, so how many tokens it "
                    "keeps depends on the row.")

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
        sums = out[0.6].sum(-1)
        if np.allclose(out[0.6], masked * (sums / masked.sum(-1))[:, None], rtol=1e-4,
                       atol=1e-6):
            return (f"Your function keeps the right tokens, but on a test row with top_p = 0.6 "
                    f"its output adds up to {sums[0]:.2f}, not 1. Divide the kept probabilities "
                    "by their own sum (not by top_p: the kept mass is at least top_p, rarely "
                    "exactly top_p).")
        soft = np.where(right > 0, np.exp(probs), 0.0)
        if np.allclose(out[0.6], soft / soft.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6):
            return ("Your function keeps the right tokens, but renormalises with a softmax of "
                    "the probabilities; softmax is for logits. Divide the kept probabilities "
                    "by their sum instead.")
    return None


TOP_P = Exercise(
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

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (TOP_P,)

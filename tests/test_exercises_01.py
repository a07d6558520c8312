"""Exercise 01 (cosine similarity between embedding rows): the reference, its inputs, and what
the checker says to typical wrong solutions.

``WRONG_SOLUTIONS_01`` and ``RIGHT_SOLUTIONS_01`` have the shape of the per-exercise lists in
the project's exercise tests: ``[(wrong function, text or texts its hint must contain)]`` and
``[correct function written another way]``. The texts are pieces of the checker's wording
(attnlab/checks/) that name the mistake or where it shows.
"""

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.exercises import EXERCISES, check_exercise

NAME = "cosine_similarity"


def reference_np(embeddings):
    """Independent float64 NumPy version, pair by pair: a·b / (|a| |b|), 0 if either is zero."""
    e = np.asarray(embeddings, np.float64)
    V = e.shape[0]
    out = np.zeros((V, V))
    for i in range(V):
        for j in range(V):
            norms = np.sqrt(e[i] @ e[i]) * np.sqrt(e[j] @ e[j])
            out[i, j] = e[i] @ e[j] / norms if norms > 0 else 0.0
    return out


def test_reference_matches_an_independent_numpy_version():
    exercise = EXERCISES[NAME]
    for key in jax.random.split(jax.random.key(0), 20):
        (embeddings,) = exercise.inputs(key)
        np.testing.assert_allclose(np.asarray(exercise.reference(embeddings)),
                                   reference_np(embeddings), atol=1e-6)


def test_inputs_have_three_scales_and_sometimes_a_zero_row():
    exercise = EXERCISES[NAME]
    scales, zero_rows = set(), 0
    for key in jax.random.split(jax.random.key(0), exercise.n_trials):
        (embeddings,) = exercise.inputs(key)
        e = np.asarray(embeddings)
        assert e.shape == (12, 5) and e.dtype == np.float32
        norms = np.linalg.norm(e, axis=1)
        zero_rows += int((norms == 0).sum())
        scales.add(int(np.round(np.log10(np.median(norms[norms > 0])))))
    assert scales == {-1, 0, 1}
    assert 2 <= zero_rows <= 15


def test_the_exercise_belongs_to_notebook_01():
    assert EXERCISES[NAME].notebook == "01"
    assert "(V, D) -> (V, V)" in EXERCISES[NAME].task


# --- right solutions, written in different ways -----------------------------------------------


def cosine_guarded_max(embeddings):
    norms = jnp.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / jnp.maximum(norms, 1e-12)
    return unit @ unit.T


def cosine_numpy_epsilon(embeddings):
    e = np.asarray(embeddings)
    unit = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-9)
    return unit @ unit.T


def cosine_where_zero(embeddings):
    norms = jnp.linalg.norm(embeddings, axis=-1, keepdims=True)
    unit = jnp.where(norms > 0, embeddings / norms, 0.0)  # 0/0 in the unused branch is fine
    return unit @ unit.T


def cosine_dot_then_divide(embeddings):
    dots = embeddings @ embeddings.T
    norms = jnp.sqrt(jnp.diag(dots))
    outer = norms[:, None] * norms[None, :]
    return jnp.where(outer > 0, dots / jnp.where(outer > 0, outer, 1.0), 0.0)


def cosine_einsum(embeddings):
    squared = jnp.einsum("vd,vd->v", embeddings, embeddings)
    unit = embeddings * jax.lax.rsqrt(jnp.maximum(squared, 1e-24))[:, None]
    return jnp.einsum("id,jd->ij", unit, unit)


RIGHT_SOLUTIONS_01 = [cosine_guarded_max, cosine_numpy_epsilon, cosine_where_zero,
                      cosine_dot_then_divide, cosine_einsum]


# --- typical wrong solutions ---------------------------------------------------------------------


def _guarded(x):
    return jnp.maximum(x, 1e-12)


def dot_product_not_cosine(embeddings):  # forgot to normalise at all
    return embeddings @ embeddings.T


def normalised_the_wrong_axis(embeddings):  # each column to length 1, not each row
    unit = embeddings / _guarded(jnp.linalg.norm(embeddings, axis=0, keepdims=True))
    return unit @ unit.T


def norm_without_keepdims(embeddings):  # (V, D) / (V,): the shapes do not line up
    unit = embeddings / jnp.linalg.norm(embeddings, axis=1)
    return unit @ unit.T


def divided_by_the_squared_norm(embeddings):  # |a|² where |a| was wanted
    unit = embeddings / _guarded((embeddings**2).sum(axis=1, keepdims=True))
    return unit @ unit.T


def normalised_one_side_only(embeddings):  # a·b / |a|
    norms = _guarded(jnp.linalg.norm(embeddings, axis=1, keepdims=True))
    return (embeddings @ embeddings.T) / norms


def whole_matrix_norm(embeddings):  # the Frobenius norm of E, the same for every row
    return embeddings @ embeddings.T / jnp.linalg.norm(embeddings) ** 2


def no_guard_for_a_zero_row(embeddings):  # 0/0 = NaN for the row with no direction
    unit = embeddings / jnp.linalg.norm(embeddings, axis=1, keepdims=True)
    return unit @ unit.T


def diagonal_forced_to_one(embeddings):  # "a vector is always similar to itself"
    unit = embeddings / _guarded(jnp.linalg.norm(embeddings, axis=1, keepdims=True))
    return unit @ unit.T + jnp.eye(embeddings.shape[0]) * (1 - jnp.diag(unit @ unit.T))


def transposed_the_wrong_side(embeddings):  # (D, V) @ (V, D) = (D, D)
    unit = embeddings / _guarded(jnp.linalg.norm(embeddings, axis=1, keepdims=True))
    return unit.T @ unit


def cosine_distance(embeddings):  # 1 - cos, as scipy.spatial.distance.cosine returns
    unit = embeddings / _guarded(jnp.linalg.norm(embeddings, axis=1, keepdims=True))
    return 1 - unit @ unit.T


def forgot_the_transpose(embeddings):  # (V, D) @ (V, D)
    unit = embeddings / _guarded(jnp.linalg.norm(embeddings, axis=1, keepdims=True))
    return unit @ unit


def forgot_to_return(embeddings):
    unit = embeddings / _guarded(jnp.linalg.norm(embeddings, axis=1, keepdims=True))
    unit @ unit.T


def not_started(embeddings):
    raise NotImplementedError


# [(wrong function, text or texts its hint must contain)]. The first five get their likely
# cause and the "differs" description, which points at a diagonal entry that should be 1.
WRONG_SOLUTIONS_01 = [
    (dot_product_not_cosine, ("Likely cause: a plain dot product", "expected 1 ")),
    (normalised_the_wrong_axis, ("Likely cause: normalised the columns", "expected 1 ")),
    (divided_by_the_squared_norm, ("Likely cause: divided by the squared lengths", "expected 1 ")),
    (normalised_one_side_only, ("Likely cause: only one side was normalised", "expected 1 ")),
    (whole_matrix_norm, ("Likely cause: divided by the norm of the whole matrix", "expected 1 ")),
    (norm_without_keepdims, (
        "raised ValueError: Incompatible shapes for broadcasting",
        "(12,) is embeddings without its axis D.",
        "unless you pass keepdims=True",
    )),
    (no_guard_for_a_zero_row, (
        "output has NaN", "where the reference has a number (0)",
        "The first NaN appears in div", "0/0 is NaN",
    )),
    (diagonal_forced_to_one, ("Likely cause: a row of zeros got similarity 1 with itself",
                              "differs from the reference at 1 of 144 positions",
                              "your value 1, expected 0")),
    (transposed_the_wrong_side, ("Likely cause: the product is (D, D)",
                                 "returned shape (5, 5); expected (12, 12)")),
    (cosine_distance, ("Likely cause: this is the cosine distance 1 - cos",)),
    (forgot_the_transpose, ("raised TypeError", "return unit @ unit")),
    (forgot_to_return, "did you forget to return?"),
    (not_started, "not implemented yet"),
]



def test_a_missing_guard_fails_only_on_a_trial_with_a_zero_row():
    result = check_exercise(NAME, no_guard_for_a_zero_row)
    (embeddings,) = result.inputs
    assert (np.linalg.norm(np.asarray(embeddings), axis=1) == 0).any()

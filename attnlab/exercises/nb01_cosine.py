"""Notebook 01's exercise (``cosine_similarity``): the cosine similarity of every pair of token
embeddings.

The learner turns embeddings ``(V, D)`` into a ``(V, V)`` matrix of cosines; a row of zeros
has no direction, so its similarity with every row, itself included, is 0.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from attnlab.exercises._core import Exercise, Mistake

#: Sizes of the cosine-similarity exercise: V vectors of width D. D differs from V so that
#: normalising along the wrong axis without keepdims, or a missing transpose, shows as a shape
#: error instead of silently wrong numbers.
_COS_V, _COS_D = 12, 5


def _cosine_inputs(key: jax.Array):
    """Embeddings ``(12, 5)``: standard normal times a scale of 0.1, 1 or 10 (cosine does not
    depend on length, so a solution that forgets to normalise fails at every scale); on about
    a third of the trials one row is all zeros, a vector with no direction."""
    k_scale, k_rows, k_zero, k_which = jax.random.split(key, 4)
    scale = jax.random.choice(k_scale, jnp.array([0.1, 1.0, 10.0]))
    embeddings = scale * jax.random.normal(k_rows, (_COS_V, _COS_D))
    if jax.random.uniform(k_zero) < 1 / 3:
        embeddings = embeddings.at[jax.random.randint(k_which, (), 0, _COS_V)].set(0.0)
    return (embeddings,)


def _cosine_reference(embeddings):
    from attnlab.tokenization import cosine_similarity

    return cosine_similarity(embeddings)


def _cosine_variant(kind: str) -> Callable:
    """A cosine similarity that makes one chosen mistake (for :class:`Mistake`)."""

    def similarity(embeddings):
        e = jnp.asarray(embeddings, jnp.float32)
        norms = jnp.linalg.norm(e, axis=-1, keepdims=True)
        safe = jnp.where(norms == 0, 1.0, norms)
        if kind == "dot":
            return e @ e.T
        if kind == "squared":
            squared = jnp.where(norms == 0, 1.0, norms**2)
            return e @ e.T / (squared * squared.T)
        if kind == "columns":
            columns = jnp.linalg.norm(e, axis=0, keepdims=True)
            unit = e / jnp.where(columns == 0, 1.0, columns)
            return unit @ unit.T
        if kind == "one_side":
            return (e / safe) @ e.T
        if kind == "whole":
            return e @ e.T / jnp.sum(e**2)
        unit = e / safe
        if kind == "features":
            return unit.T @ unit  # (D, D): the wrong side transposed
        if kind == "distance":
            return 1.0 - unit @ unit.T
        if kind == "self_one":
            return jnp.where(jnp.eye(e.shape[0], dtype=bool), 1.0, unit @ unit.T)
        raise ValueError(kind)

    return similarity


_COSINE_MISTAKES = (
    Mistake("a plain dot product: cosine similarity divides each dot product by the lengths "
            "of both vectors (normalise every row first).", _cosine_variant("dot")),
    Mistake("divided by the squared lengths: the length is the square root of the sum of "
            "squares (jnp.linalg.norm), not the sum itself.", _cosine_variant("squared")),
    Mistake("normalised the columns (axis 0): each token's vector is a row, so normalise along "
            "axis=-1 (with keepdims=True).", _cosine_variant("columns")),
    Mistake("only one side was normalised: divide by the length of both vectors, the row's and "
            "the column's.", _cosine_variant("one_side")),
    Mistake("divided by the norm of the whole matrix: each pair needs the lengths of its own two "
            "vectors.", _cosine_variant("whole")),
    Mistake("the product is (D, D), one entry per pair of features: with unit rows of shape "
            "(V, D), the (V, V) matrix of all pairs of tokens is unit @ unit.T.",
            _cosine_variant("features")),
    Mistake("this is the cosine distance 1 - cos (what scipy.spatial.distance.cosine returns); "
            "the exercise asks for the similarity itself, 1 for rows pointing the same way.",
            _cosine_variant("distance")),
    Mistake("a row of zeros got similarity 1 with itself: it has no direction, so its "
            "similarity with every row, itself included, is 0.", _cosine_variant("self_one")),
)


COSINE_SIMILARITY = Exercise(
    name="cosine_similarity",
    notebook="01",
    task="cosine similarity between every pair of rows: embeddings (V, D) -> (V, V); a row "
    "of zeros has similarity 0 with every row, itself included",
    reference=_cosine_reference,
    inputs=_cosine_inputs,
    axis_names={"embeddings": ("V", "D")},
    mistakes=_COSINE_MISTAKES,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (COSINE_SIMILARITY,)

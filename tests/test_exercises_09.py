"""Notebook 09's exercise, ``lora_forward``: typical wrong solutions and the hint each gets.

The learner-style solutions below are written in NumPy, independently of the exercise's
reference (the package's ``LoRALinear``) and of its list of mistakes.
"""

import numpy as np

from attnlab.exercises import EXERCISES, check_exercise


def learner_lora(x, W, b, A, B, alpha, *, scale="alpha/r", base=True, bias=True, outside=False,
                 update="x A B"):
    x, W, b, A, B = (np.asarray(v, np.float64) for v in (x, W, b, A, B))
    r = B.shape[0]
    s = {"alpha/r": alpha / r, "alpha": alpha, "r/alpha": r / alpha, "none": 1.0,
         "alpha/d_in": alpha / x.shape[1], "alpha/d_out": alpha / W.shape[1]}[scale]
    if update == "input":  # the low-rank term added to x, then the frozen layer
        return (x + s * (x @ A) @ B) @ W + b
    frozen = (x @ W if base else 0) + (b if bias else 0)
    low_rank = {"x A B": lambda: (x @ A) @ B, "x B A": lambda: x @ (B @ A),
                "x At B": lambda: x @ A.T @ B}[update]()
    return s * (frozen + low_rank) if outside else frozen + s * low_rank


def scaled_by_alpha(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, scale="alpha")


def scaled_by_r_over_alpha(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, scale="r/alpha")


def not_scaled(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, scale="none")


def no_x_w(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, base=False)


def adapter_only(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, base=False, bias=False)


def rank_from_d_in(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, scale="alpha/d_in")


def rank_from_d_out(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, scale="alpha/d_out")


def factors_swapped(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, update="x B A")


def a_transposed(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, update="x At B")


def update_on_the_input(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, update="input")


def forgot_bias(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, bias=False)


def scale_on_everything(x, W, b, A, B, alpha):
    return learner_lora(x, W, b, A, B, alpha, outside=True)


def not_started(x, W, b, A, B, alpha):
    raise NotImplementedError


def merged_first(x, W, b, A, B, alpha):
    """Fold the adapter into the kernel, then one matrix product: the same numbers."""
    return x @ (W + (alpha / A.shape[1]) * A @ B) + b


WRONG_SOLUTIONS_09 = [
    (scaled_by_alpha, "Likely cause: the adapter was scaled by alpha, not alpha / r"),
    (scaled_by_r_over_alpha, "Likely cause: the scale is upside down"),
    (not_scaled, "Likely cause: the adapter was not scaled"),
    (no_x_w, "Likely cause: the frozen weight's term x @ W is missing"),
    (adapter_only, "Likely cause: only the adapter's term is returned"),
    (rank_from_d_in, "Likely cause: r was read from the wrong axis (A.shape[0] is d_in)"),
    (rank_from_d_out, "Likely cause: r was read from the wrong axis (B.shape[1] is d_out)"),
    (factors_swapped, "Likely cause: the factors are in the wrong order"),
    (a_transposed, "Likely cause: A is already (d_in, r), so x @ A needs no transpose"),
    (update_on_the_input, "Likely cause: the low-rank update was added to the input x"),
    (forgot_bias, "Likely cause: the base layer's bias b is missing"),
    (scale_on_everything, "Likely cause: the scale was applied to the whole output"),
    (not_started, "not implemented yet"),
]
RIGHT_SOLUTIONS_09 = [learner_lora, merged_first]


def test_the_exercise_is_registered_for_notebook_09():
    exercise = EXERCISES["lora_forward"]
    assert exercise.notebook == "09" and len(exercise.mistakes) >= 5


def test_an_unrecognised_mistake_gets_no_hint():
    result = check_exercise("lora_forward", lambda *args: 2 * learner_lora(*args))
    assert not result.passed and "Likely cause" not in result.message

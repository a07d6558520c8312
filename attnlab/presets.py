"""Named training recipes: a model size and a schedule, shared by the CLI, notebooks and benchmarks.

A recipe lives here once, so that ``python -m attnlab train --preset default``, notebook 07 and
``benchmarks/`` all train the same mini GPT. Importing this module does not import JAX (the
command line checks its arguments before it pays for that import).

Example::

    from attnlab.presets import PRESETS

    preset = PRESETS["default"]
    config = preset.gpt_config(vocab_size=96)   # GPTConfig(context_length=128, n_layers=4, ...)
    train_config = preset.train_config()        # TrainConfig(steps=1500, batch_size=16, ...)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["PRESETS", "Preset"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """One training recipe.

    Attributes:
      name: the name the CLI's ``--preset`` takes.
      about: one line for ``--help`` and notebooks: what it is and how long it takes.
      model: keyword arguments of :class:`attnlab.gpt.GPTConfig`, except ``vocab_size`` (the
        tokenizer decides that).
      train: keyword arguments of :class:`attnlab.train.TrainConfig`.
    """

    name: str
    about: str
    model: Mapping[str, Any]
    train: Mapping[str, Any]

    def __post_init__(self) -> None:
        # Read-only views: a notebook that edits a preset by accident cannot change the recipe.
        object.__setattr__(self, "model", MappingProxyType(dict(self.model)))
        object.__setattr__(self, "train", MappingProxyType(dict(self.train)))

    def gpt_config(self, vocab_size: int, **overrides):
        """The :class:`~attnlab.gpt.GPTConfig` of this recipe for a vocabulary of ``vocab_size``.

        Raises:
          ValueError: as :class:`~attnlab.gpt.GPTConfig` does for out-of-range values.
        """
        from attnlab.gpt import GPTConfig

        return GPTConfig(vocab_size=vocab_size, **{**self.model, **overrides})

    def train_config(self, **overrides):
        """The :class:`~attnlab.train.TrainConfig` of this recipe, with ``overrides`` applied.

        The learning-rate schedule keeps the recipe's length when ``steps`` is overridden:
        ``decay_steps`` is ``max(recipe's steps, steps)`` unless given. So a shorter run
        stops part-way through the recipe's schedule (exactly where the full run is at that
        step, which lets it be resumed later), and a longer run stretches the schedule to
        its own length. Training always validates at its last step.

        Raises:
          ValueError: as :class:`~attnlab.train.TrainConfig` does for out-of-range values.
        """
        from attnlab.train import TrainConfig

        return TrainConfig(**self.train_kwargs(**overrides))

    def train_kwargs(self, **overrides) -> dict[str, Any]:
        """:meth:`train_config`'s keyword arguments as a plain dict (no JAX import).

        ``None`` values in ``overrides`` are ignored (they mean "the recipe's value").
        """
        kwargs = {**self.train, **{k: v for k, v in overrides.items() if v is not None}}
        if kwargs.get("decay_steps") is None:
            kwargs["decay_steps"] = max(self.train["steps"], kwargs["steps"])
        return kwargs


#: The recipes by name. ``default`` made the shipped checkpoint; ``tiny`` is a seconds-long run
#: for tests and for notebooks under ``ATTNLAB_FAST=1``.
PRESETS: Mapping[str, Preset] = MappingProxyType({
    p.name: p
    for p in (
        Preset(
            name="default",
            about="the mini GPT of the notebooks: about 4-5 minutes on 2 CPU cores",
            model=dict(context_length=128, n_layers=4, n_heads=4, d_model=128, d_ff=512),
            train=dict(steps=1500, batch_size=16, learning_rate=3e-3, warmup_steps=100,
                       eval_interval=250),
        ),
        Preset(
            name="tiny",
            about="a seconds-long smoke test (the loss falls from about 4.5 to 3.5)",
            model=dict(context_length=32, n_layers=1, n_heads=2, d_model=32, d_ff=64),
            train=dict(steps=30, batch_size=8, learning_rate=3e-3, warmup_steps=5,
                       eval_interval=15),
        ),
    )
})

"""The mini GPT that ships with attnlab, so later notebooks start without training."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["PRETRAINED_PATH", "load_pretrained"]

#: The shipped checkpoint: a character-level GPT trained on the embedded corpus by
#: ``python -m attnlab train`` (its command, seed and validation loss are in the file's metadata).
PRETRAINED_PATH: Path = Path(str(resources.files("attnlab") / "assets" / "mini_gpt.safetensors"))


def load_pretrained():
    """Load the shipped mini GPT.

    Returns:
      A :class:`attnlab.checkpoint.Checkpoint` with ``.model`` (a :class:`~attnlab.gpt.GPT`),
      ``.tokenizer`` (a :class:`~attnlab.data.CharTokenizer`), ``.config`` and ``.metadata``
      (including ``val_loss`` in nats/char and the ``command`` that trained it).

    Raises:
      FileNotFoundError: if the asset is missing from this installation.
    """
    from attnlab import checkpoint

    if not PRETRAINED_PATH.exists():
        raise FileNotFoundError(
            f"the shipped checkpoint is missing: {PRETRAINED_PATH}. Reinstall attnlab, or train "
            "one with `python -m attnlab train` and load it with attnlab.checkpoint.load(path)."
        )
    return checkpoint.load(PRETRAINED_PATH)

"""attnlab: attention, transformers and GPTs, computed step by step in JAX/Flax.

One module per idea: :mod:`attnlab.data`, :mod:`attnlab.attention`, :mod:`attnlab.positional`,
:mod:`attnlab.gpt`, :mod:`attnlab.sampling`, :mod:`attnlab.train`, :mod:`attnlab.checkpoint`,
:mod:`attnlab.viz`, :mod:`attnlab.quiz`, :mod:`attnlab.checks`. ``python -m attnlab --help``
lists the command-line tools.
"""

from attnlab.pretrained import load_pretrained

__version__ = "0.1.0"
__all__ = ["__version__", "load_pretrained"]

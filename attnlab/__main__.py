"""``python -m attnlab``: see :mod:`attnlab.cli`."""

import sys

from attnlab.cli import main

sys.exit(main())

"""``python -m sliver`` is the ``sliver`` command."""

import sys

from .cli import main

sys.exit(main())

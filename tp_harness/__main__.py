"""``python -m tp_harness``."""

import sys

from .cli import main

sys.exit(main())

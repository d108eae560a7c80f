"""``python -m eventwire``."""

import sys

from eventwire.cli import main

sys.exit(main())

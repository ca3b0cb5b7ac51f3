"""``python -m bench``: hanzo-run against the aiohttp floor, scenarios (a) to (k) and the scale curve (s)."""

import sys

from .driver import main

sys.exit(main())

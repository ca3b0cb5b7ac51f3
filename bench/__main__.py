"""``python -m bench``: hanzo-run against the aiohttp floor, scenarios (a) to (f) of issue 6."""

import sys

from .driver import main

sys.exit(main())

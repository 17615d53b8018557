"""``python -m m2bridge``: the same entry point as the ``m2bridge`` command."""

from __future__ import annotations

import sys

from m2bridge.cli import main

if __name__ == "__main__":
    sys.exit(main())

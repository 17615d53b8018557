"""``python -m mongrel2_conf load|check|show ...``: the config commands without m2bridge."""

from __future__ import annotations

import sys

from mongrel2_conf.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""An application module that fails at import (the worker must exit 1 with one line)."""

raise RuntimeError("broken on purpose")

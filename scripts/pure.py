"""Which modules are pure (import no zmq, gevent, socket, subprocess or signal), by path.

The one home of the rule that tests/unit/test_imports.py checks, docs/layout.md shows and the
coverage gate holds to 100%: every module under a pure package, plus each module elsewhere
whose docstring carries the purity line (``supervisor/plan.py``, ``relay/state.py``).

    python3 scripts/pure.py    # the pure modules' paths, comma-separated (coverage --include)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Packages whose every module is pure.
PURE_PACKAGES = ("m2bridge/wire", "m2bridge/wsgi", "m2bridge/supervisor/commands", "mongrel2_conf")
PURITY_LINE = "Must not import zmq, gevent, socket, subprocess."
#: Where pure modules are looked for.
SOURCE_PACKAGES = ("m2bridge", "mongrel2_conf")


def declares_purity(path: Path) -> bool:
    """Whether the module's docstring carries ``PURITY_LINE`` (line breaks allowed)."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    return PURITY_LINE in " ".join(docstring.split())


def under_pure_package(path: Path) -> bool:
    return any(path.is_relative_to(ROOT / package) for package in PURE_PACKAGES)


def is_pure(path: Path) -> bool:
    return under_pure_package(path) or declares_purity(path)


def pure_modules() -> list[Path]:
    """Every pure module of the source packages, sorted."""
    found = (path for package in SOURCE_PACKAGES for path in (ROOT / package).rglob("*.py"))
    return sorted(path for path in found if is_pure(path))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


if __name__ == "__main__":
    print(",".join(path.relative_to(ROOT).as_posix() for path in pure_modules()))
    sys.exit(0)

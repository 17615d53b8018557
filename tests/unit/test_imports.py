"""Import hygiene, checked by path: every pure module pulls in no I/O library.

The pure modules are found, not listed: every module under a pure package, plus any module
elsewhere whose docstring carries the purity line (``supervisor/plan.py``, ``relay/state.py``).
A new module under ``wire/`` or ``wsgi/`` is checked the day it is added.

Each module is imported in a fresh interpreter, then its ``sys.modules`` is inspected: importing
in this process would prove nothing, since pytest and other tests load those packages already.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Packages whose every module is pure (no zmq, gevent, socket, subprocess, signal).
PURE_PACKAGES = ("m2bridge/wire", "m2bridge/wsgi", "m2bridge/supervisor/commands", "mongrel2_conf")
PURITY_LINE = "Must not import zmq, gevent, socket, subprocess."
FORBIDDEN = ("zmq", "gevent", "socket", "subprocess", "signal")
IO_PACKAGES = ("zmq", "gevent")
#: Not pure, but cheap to import: no zmq, no gevent (the CLI and the supervisor load them).
LIGHT = ("m2bridge", "m2bridge.config", "m2bridge.loader", "m2bridge.supervisor", "m2bridge.cli")

PROBE = """
import importlib, json, sys
importlib.import_module({name!r})
print(json.dumps(sorted(m for m in {forbidden!r} if m in sys.modules)))
"""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def declares_purity(path: Path) -> bool:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    return PURITY_LINE in " ".join(docstring.split())


def under_pure_package(path: Path) -> bool:
    return any(path.is_relative_to(ROOT / package) for package in PURE_PACKAGES)


def all_modules() -> list[Path]:
    found = [*(ROOT / "m2bridge").rglob("*.py"), *(ROOT / "mongrel2_conf").rglob("*.py")]
    return sorted(found)


PURE = [path for path in all_modules() if under_pure_package(path) or declares_purity(path)]


def loaded_after_import(name: str, forbidden: tuple[str, ...]) -> list[str]:
    """Import ``name`` in a new interpreter; return which ``forbidden`` modules it loaded."""
    code = PROBE.format(name=name, forbidden=forbidden)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("path", PURE, ids=lambda path: module_name(path))
def test_pure_module_imports_no_io_library(path: Path) -> None:
    assert loaded_after_import(module_name(path), FORBIDDEN) == []


def test_pure_set_covers_the_sans_io_core() -> None:
    names = {module_name(path) for path in PURE}
    core = {"m2bridge.wire.protocol", "m2bridge.wsgi.response", "m2bridge.supervisor.plan"}
    assert core | {"m2bridge.relay.state", "m2bridge.relay.wire"} <= names


@pytest.mark.parametrize("name", LIGHT)
def test_light_module_imports_neither_zmq_nor_gevent(name: str) -> None:
    assert loaded_after_import(name, IO_PACKAGES) == []


def test_probe_sees_a_forbidden_import() -> None:
    assert loaded_after_import("zmq", IO_PACKAGES) == ["zmq"]

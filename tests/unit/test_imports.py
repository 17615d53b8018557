"""Import hygiene, checked by path: every pure module pulls in no I/O library.

The pure modules are found, not listed: every module under a pure package, plus any module
elsewhere whose docstring carries the purity line (``supervisor/plan.py``, ``relay/state.py``).
A new module under ``wire/`` or ``wsgi/`` is checked the day it is added.

Each module is imported in a fresh interpreter, then its ``sys.modules`` is inspected: importing
in this process would prove nothing, since pytest and other tests load those packages already.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.environ import environ_without_coverage

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("zmq", "gevent", "socket", "subprocess", "signal")
IO_PACKAGES = ("zmq", "gevent")
#: Not pure, but cheap to import: no zmq, no gevent (the CLI and the supervisor load them).
LIGHT = ("m2bridge", "m2bridge.config", "m2bridge.loader", "m2bridge.supervisor", "m2bridge.cli")

PROBE = """
import importlib, json, sys
importlib.import_module({name!r})
print(json.dumps(sorted(m for m in {forbidden!r} if m in sys.modules)))
"""


def load_rule():  # the rule lives in scripts/pure.py, shared with the docs and coverage gate
    spec = importlib.util.spec_from_file_location("pure", ROOT / "scripts" / "pure.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULE = load_rule()
PURE = RULE.pure_modules()
module_name = RULE.module_name


def loaded_after_import(name: str, forbidden: tuple[str, ...]) -> list[str]:
    """Import ``name`` in a new interpreter; return which ``forbidden`` modules it loaded."""
    code = PROBE.format(name=name, forbidden=forbidden)
    env = environ_without_coverage()  # what the coverage tool imports is not ours
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=20
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


@pytest.mark.parametrize(
    "name",
    [
        module_name(path)
        for path in RULE.pure_modules()
        if module_name(path).startswith("mongrel2_conf")
    ],
)
def test_mongrel2_conf_module_imports_nothing_of_m2bridge(name: str) -> None:
    assert loaded_after_import(name, ("m2bridge",)) == []


def test_probe_sees_a_forbidden_import() -> None:
    assert loaded_after_import("zmq", IO_PACKAGES) == ["zmq"]

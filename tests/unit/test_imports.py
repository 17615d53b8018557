"""Import hygiene: pure modules pull in neither zmq nor gevent (nor socket/subprocess for the core).

Each module is imported in a fresh interpreter, then its ``sys.modules`` is inspected: importing
in this process would prove nothing, since pytest and other tests load those packages already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO_PACKAGES = ("zmq", "gevent")
#: The sans-IO core: protocol, WSGI environ/body/response, handler; no sockets or processes.
CORE = ["m2bridge.protocol", "m2bridge.encode", "m2bridge.environ", "m2bridge.body"]
CORE += ["m2bridge.response"]
CORE += ["m2bridge.handler", "m2bridge.errors", "m2bridge.websocket", "m2bridge.flow"]
CORE += ["m2bridge.relay_state"]
#: Pure too, but only held to "no zmq, no gevent" for now.
LIGHT = ("m2bridge.config", "m2bridge.loader", "mongrel2_conf", "m2bridge", "m2bridge.supervisor")

PROBE = """
import importlib, json, sys
importlib.import_module({name!r})
print(json.dumps(sorted(m for m in {forbidden!r} if m in sys.modules)))
"""


def loaded_after_import(name: str, forbidden: tuple[str, ...]) -> list[str]:
    """Import ``name`` in a new interpreter; return which ``forbidden`` modules it loaded."""
    code = PROBE.format(name=name, forbidden=forbidden)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("name", CORE)
def test_core_module_imports_no_io(name: str) -> None:
    assert loaded_after_import(name, (*IO_PACKAGES, "socket", "subprocess")) == []


@pytest.mark.parametrize("name", LIGHT)
def test_light_module_imports_neither_zmq_nor_gevent(name: str) -> None:
    assert loaded_after_import(name, IO_PACKAGES) == []


def test_probe_sees_a_forbidden_import() -> None:
    assert loaded_after_import("zmq", IO_PACKAGES) == ["zmq"]

"""m2bridge.wsgi.speedups: the compiled helpers are found when built, and their absence is said.

The helpers' behaviour is tested through both implementations in test_fast_environ.py and
test_fast_response.py.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

import m2bridge.wsgi
from m2bridge.wsgi import speedups


@pytest.fixture
def without_the_compiled_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``speedups`` reloaded as if ``_speedups`` had not been built; restored afterwards."""
    monkeypatch.setitem(sys.modules, "m2bridge.wsgi._speedups", None)  # import raises
    monkeypatch.delattr(m2bridge.wsgi, "_speedups", raising=False)
    importlib.reload(speedups)
    yield
    monkeypatch.undo()
    importlib.reload(speedups)


def test_the_compiled_helpers_are_built_where_a_compiler_and_python_headers_are() -> None:
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if shutil.which("cc") is None or not include.exists():
        return  # nothing to build them with: the pure-Python twins serve (tested both ways)
    assert speedups.compiled is not None, speedups.MISSING
    assert speedups.MISSING == ""
    assert speedups.describe() == "fast path: compiled helpers (m2bridge.wsgi._speedups)"


@pytest.mark.usefixtures("without_the_compiled_module")
def test_without_the_compiled_helpers_the_log_line_says_pure_python_and_why() -> None:
    assert speedups.compiled is None
    assert "_speedups" in speedups.MISSING
    assert speedups.describe() == (
        f"fast path: pure-Python helpers (the compiled ones are not built: {speedups.MISSING})"
    )

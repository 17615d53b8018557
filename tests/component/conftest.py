"""Fixtures shared by the component tests."""

from __future__ import annotations

import pytest

from m2bridge.testing import FakeMongrel2


@pytest.fixture
def directory(tmp_path):
    """``tmp_path/m2``: where a test's FakeMongrel2 binds its ipc endpoints."""
    path = tmp_path / "m2"
    path.mkdir()
    return path


@pytest.fixture
def fake(directory):
    """A FakeMongrel2 in ``directory`` for one test (modules needing one per module define
    their own module-scoped ``fake``)."""
    with FakeMongrel2(directory) as fake:
        yield fake

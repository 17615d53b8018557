"""Fixtures shared by the component tests."""

from __future__ import annotations

import pytest

from m2bridge.testing import FakeMongrel2


@pytest.fixture
def fake(tmp_path):
    """A FakeMongrel2 in ``tmp_path/m2`` for one test (modules needing one per module define
    their own module-scoped ``fake``)."""
    (tmp_path / "m2").mkdir()
    with FakeMongrel2(tmp_path / "m2") as fake:
        yield fake

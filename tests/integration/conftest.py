"""The integration tier: every test here runs the real mongrel2 and m2sh."""

from __future__ import annotations

import pytest

from tests.helpers.mongrel2 import require_mongrel2


@pytest.fixture(autouse=True)
def _mongrel2_installed() -> None:
    """Fail (never skip) without the real binaries."""
    require_mongrel2()

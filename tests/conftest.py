"""Markers by directory, and the fixtures shared by several tiers.

Tests under component/ get ``component``, under integration/ ``integration`` and under
reliability/ ``reliability`` (registered in pyproject.toml; ``--strict-markers`` is on).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TIER_MARKERS = {
    "component": pytest.mark.component,
    "integration": pytest.mark.integration,
    "reliability": pytest.mark.reliability,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            tier = item.path.relative_to(tests_dir).parts[0]
        except ValueError:
            continue
        if tier in TIER_MARKERS:
            item.add_marker(TIER_MARKERS[tier])


@pytest.fixture
def base() -> Iterator[Path]:
    """A short private directory under /tmp (ipc:// paths must stay under 107 bytes), removed
    afterwards: the home of a test's `m2bridge up` stack (tests/helpers/stack.py)."""
    path = Path(tempfile.mkdtemp(prefix="m2b-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

"""Markers by directory: tests under component/ and integration/ get their marker."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        if "integration" in parts or "reliability" in parts:
            item.add_marker(pytest.mark.integration)
        elif "component" in parts:
            item.add_marker(pytest.mark.component)

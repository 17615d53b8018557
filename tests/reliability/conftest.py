"""The reliability tier: load, faults and soak against real processes.

Processes these tests start run without the coverage tool (its variables are removed for the
test's duration): they push tens of thousands of requests through workers and relays, where
tracing would double the suite's time and change the timing the tests measure, while the code
paths they take are measured by the unit, component and integration tiers.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _unmeasured_children(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("COVERAGE_")]:
        monkeypatch.delenv(key)

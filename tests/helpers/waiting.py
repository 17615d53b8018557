"""Polling for tests: wait until a condition holds, bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 5.0,
    interval: float = 0.02,
    sleep: Callable[[float], object] = time.sleep,
) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False).

    ``sleep`` pauses between checks: pass ``gevent.sleep`` where the code under test runs in
    greenlets of the test process itself, so they run while the test waits.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        sleep(interval)
    return True

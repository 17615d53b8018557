"""``wait_until`` for the tests that run gevent code in the test process itself.

``tests.helpers.waiting.wait_until`` sleeps with ``time.sleep`` between checks, which blocks
the hub: the greenlets under test would never run. Here each check first yields to them.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent

from tests.helpers.waiting import wait_until


def wait_until_green(
    predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01
) -> bool:
    """``wait_until(predicate, timeout)``, letting the greenlets run ``interval`` s per check."""

    def check() -> object:
        gevent.sleep(interval)
        return predicate()

    return wait_until(check, timeout, interval=0)

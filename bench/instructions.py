"""The run's callgrind figure: instructions the m2bridge worker spends per hello request.

``bench.worker_cost`` runs ``m2bridge serve handlers.hello:app --relay`` under
``valgrind --tool=callgrind`` behind a fake relay (tnetstring protocol), twice, with a small and
a large number of requests; the difference of the instruction totals over the difference of
the counts is the cost of one request. It is measured once per in-flight bound: 1 (the worker
waits for every request) and 32 (the relay's window: requests wait queued). Instruction counts
repeat within about 1% whatever else the machine does, unlike req/s. The runner calls this
after the wrk cycles, so that callgrind takes no CPU from them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import zmq

from . import worker_cost

APP = "hello"
PROTOCOL = "tnetstring"


class CallgrindError(RuntimeError):
    """valgrind is missing, or the worker under callgrind failed."""


def valgrind_version() -> str:
    """``valgrind-3.x.y``, or ``absent``."""
    if shutil.which("valgrind") is None:
        return "absent"
    try:
        done = subprocess.run(
            ["valgrind", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def measure_worker(requests: Sequence[int], inflight: Sequence[int]) -> dict[str, Any]:
    """Count the worker's instructions per hello request for every in-flight bound.

    Args:
        requests: the small and the large number of requests of the two runs.
        inflight: the in-flight bounds to measure (e.g. 1 and 32).

    Returns:
        The ``worker_instructions`` block of the result JSON; ``per_request`` maps
        ``str(inflight)`` to instructions per request.

    Raises:
        CallgrindError: valgrind is not installed, or a run under callgrind failed.
    """
    small, large = requests
    if not 0 < small < large:
        raise CallgrindError(f"need 0 < small < large requests, got {small}, {large}")
    version = valgrind_version()
    if version == "absent":
        raise CallgrindError("valgrind not found: apt-get install valgrind")
    started = time.monotonic()
    per_request: dict[str, float] = {}
    for bound in inflight:
        try:
            cost = worker_cost.measure(
                small, large, direct=False, inflight=bound, protocol=PROTOCOL
            )
        except (AssertionError, OSError, subprocess.SubprocessError, zmq.ZMQError) as exc:
            # worker_cost states its failures (worker exited, too slow, no totals) as asserts
            raise CallgrindError(f"in flight {bound}: {type(exc).__name__}: {exc}") from exc
        per_request[str(bound)] = round(cost, 1)
    return {
        "app": APP,
        "protocol": PROTOCOL,
        "topology": "relay",
        "valgrind": version,
        "requests": [small, large],
        "per_request": per_request,
        "seconds": round(time.monotonic() - started, 1),
    }

"""`m2bridge ctl stats` reports CPU over a recent interval from its very first call.

The supervisor samples the CPU times of every process as it loops, so neither the first call
after start nor the first after a reload (new processes) shows 0.0 for a busy process. The
stacks run the real Mongrel2; until the call under test, the tests only ask ``status`` (which
samples nothing), so a sampler primed by an earlier ``stats`` cannot hide the bug.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.helpers.http import LoadLoop
from tests.helpers.stack import RunningStack, demo

#: A watcher whose one process burns a CPU in a Python loop.
BUSY = """
[watchers.busy]
cmd = ["$(python)", "-c", "while True: pass"]
numprocesses = 1
graceful_timeout = 1
"""


def all_active(stack: RunningStack) -> bool:
    """Every watcher active, by ``status`` only (``stats`` would prime a sampler)."""
    return all(w["state"] == "active" for w in stack.call("status")["watchers"])


def first_ctl_stats(stack: RunningStack) -> dict[str, list[dict[str, Any]]]:
    """``m2bridge ctl stats --json`` as a new process: watcher name -> its process rows."""
    result = stack.ctl("--json", "stats")
    assert result.returncode == 0, result.stderr
    return {w["name"]: w["processes"] for w in json.loads(result.stdout)["watchers"]}


def test_first_ctl_stats_shows_the_cpu_of_a_busy_process_and_of_loaded_mongrel2_workers(
    base: Path,
) -> None:
    with demo(base, workers=1) as (stack, port):
        stack.wait_until(lambda: all_active(stack), timeout=20)
        with LoadLoop(port, threads=2) as load:
            stack.wait_until(lambda: load.total >= 200, timeout=20)
            time.sleep(1.5)  # a few sampling intervals under load
            rows = first_ctl_stats(stack)
        assert load.failed == 0, load.errors[:3]
        (worker,) = rows["hello"]
        (mongrel2,) = rows["mongrel2"]
        assert worker["cpu"] > 5, rows
        assert mongrel2["cpu"] > 1, rows


def test_first_ctl_stats_after_start_and_after_reload_shows_a_busy_process_busy(
    base: Path,
) -> None:
    with demo(base, workers=1, extra=BUSY) as (stack, _port):
        stack.wait_until(lambda: all_active(stack), timeout=20)
        (before,) = first_ctl_stats(stack)["busy"]
        assert before["cpu"] > 20, before
        generation = stack.status("busy")["generation"]
        reloaded = stack.ctl("reload", "busy")
        assert reloaded.returncode == 0, reloaded.stderr
        stack.wait_until(
            lambda: stack.status("busy")["generation"] > generation and all_active(stack),
            timeout=20,
        )
        (after,) = first_ctl_stats(stack)["busy"]
        assert after["pid"] != before["pid"]
        assert after["cpu"] > 20, after

"""``$(wid)`` is a stable slot, with the real Mongrel2: a worker killed with SIGKILL is replaced
in its own slot, even when lower slots are free (after a rolling reload the slots run past
``numprocesses``, docs/reliability.md)."""

from __future__ import annotations

import os
import signal

from tests.helpers.stack import RunningStack, demo, wait_active, wait_serving


def slots(stack: RunningStack) -> dict[int, int]:
    """wid -> pid of ``hello``'s ready processes."""
    return {p["wid"]: p["pid"] for p in stack.processes("hello") if p["state"] == "ready"}


def test_worker_killed_after_a_reload_is_replaced_in_its_own_slot_not_the_lowest_free(base):
    with demo(base, workers=3) as (stack, port):
        wait_serving(stack, port, workers=3)
        stack.call("reload", name="hello")
        stack.wait_until(lambda: stack.status("hello")["generation"] == 1)
        wait_active(stack, workers=3)
        before = slots(stack)
        victim = max(before)
        assert victim > 3, f"the rolling reload left compact slots {sorted(before)}"
        free_below = min(set(range(1, victim)) - set(before))

        os.kill(before[victim], signal.SIGKILL)
        stack.wait_until(
            lambda: before[victim] not in slots(stack).values() and len(slots(stack)) == 3,
            timeout=20,
        )

        after = slots(stack)
        assert sorted(after) == sorted(before), f"slot {victim} went to {free_below}: {after}"
        assert after[victim] != before[victim]
        assert {w: p for w, p in after.items() if w != victim} == {
            w: p for w, p in before.items() if w != victim
        }
        wait_serving(stack, port, workers=3)

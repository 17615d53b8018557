"""A watcher's restarts by reason and its request totals, which keep what ended processes
served (real supervisor, stand-in workers)."""

from __future__ import annotations

from typing import Any

from tests.helpers.stack import RunningStack, fake_watcher, running_stack


def report(stack: RunningStack, name: str = "w") -> dict[str, Any]:
    watchers: list[dict[str, Any]] = stack.call("stats", name=name)["watchers"]
    return watchers[0]


def test_totals_keep_what_replaced_processes_served(base):
    watcher = fake_watcher(numprocesses=1, env={"SERVE_PER_TICK": "5"}, max_requests=40)
    with running_stack(base, watcher) as stack:
        seen: list[int] = []

        def replaced_twice() -> bool:
            now = report(stack)
            seen.append((now["totals"] or {"served": 0})["served"])
            return bool(now["restarts"]["max_requests"] >= 2)

        stack.wait_until(replaced_twice, timeout=15)
        assert seen == sorted(seen)  # the total never went down across the replacements
        assert seen[-1] >= 80  # two replaced processes' 40 each, plus the live one's
        assert report(stack)["restarts"]["crash"] == 0


def test_crashes_and_flapping_are_counted(base):
    watcher = fake_watcher(numprocesses=1, env={"CRASH": "1"})
    flapping = "[watchers.w.flapping]\nattempts = 2\nwindow = 10\nretry_in = 0.2\n"
    with running_stack(base, watcher + flapping) as stack:
        stack.wait_until(lambda: report(stack)["restarts"]["flapping"] >= 1, timeout=10)
        restarts = report(stack)["restarts"]
        assert restarts["crash"] >= 2
        assert restarts["exit"] == 0


def test_a_clean_exit_counts_as_exit(base):
    watcher = '[watchers.w]\ncmd = ["sh", "-c", "sleep 0.3"]\n'
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: report(stack)["restarts"]["exit"] >= 1, timeout=10)
        assert report(stack)["restarts"]["crash"] == 0
        assert report(stack)["totals"] is None  # publishes no counters


def test_a_reload_counts_each_process_it_replaces(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("reload", name="w")
        assert report(stack)["restarts"] == {
            "exit": 0, "crash": 0, "flapping": 0, "max_requests": 0, "max_rss": 0, "reload": 2,
            "hung": 0,
        }  # fmt: skip

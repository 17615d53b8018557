"""The supervisor with real child processes (no Mongrel2): `m2bridge up` + the control socket.

Children are small Python programs (a fake worker that publishes a stats file like the real
one, tests/helpers/stack.py) so each behaviour (scaling, respawn, flapping, rolling reload,
quit) is checked on real processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil

from tests.helpers.stack import UP, count_started, fake_watcher, orphans, running_stack

# -- scaling --


def test_up_starts_numprocesses_and_relays_their_output(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        assert sorted(p["wid"] for p in stack.processes("w")) == [1, 2]
        stack.wait_until(lambda: "w.2 | worker 2 up ['slot=2']" in stack.log())
        assert "w.1 | worker 1 up ['slot=1']" in stack.log()


def test_incr_and_decr_show_in_stats_within_a_second(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        assert stack.call("incr", name="w", n=2)["numprocesses"] == 3
        assert stack.wait_until(lambda: len(stack.processes("w")) == 3) < 1.0
        assert stack.call("decr", name="w")["numprocesses"] == 2
        took = stack.wait_until(lambda: len(stack.pids("w", "ready")) == 2)
        assert took < 1.0
        stack.wait_until(lambda: len(stack.processes("w")) == 2)
        assert sorted(p["wid"] for p in stack.processes("w")) == [1, 2]


def test_decr_drains_the_highest_slot_before_it_exits(base):
    watcher = fake_watcher(numprocesses=2, env={"DRAIN": "0.5"})
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("decr", name="w")
        stack.wait_until(lambda: len(stack.processes("w")) == 1)
        assert stack.processes("w")[0]["wid"] == 1
        assert "w.2 | worker drained" in stack.log()


def test_signals_ttin_ttou_scale_like_incr_decr(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        os.kill(stack.proc.pid, signal.SIGTTIN)
        stack.wait_until(lambda: stack.status("w")["numprocesses"] == 2)
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        os.kill(stack.proc.pid, signal.SIGTTOU)
        stack.wait_until(lambda: len(stack.processes("w")) == 1)


# -- respawn and flapping --


def test_killed_process_is_respawned_in_its_slot(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        victim = next(p for p in stack.processes("w") if p["wid"] == 2)
        os.kill(victim["pid"], signal.SIGKILL)
        stack.wait_until(
            lambda: any(p["wid"] == 2 and p["pid"] != victim["pid"] for p in stack.processes("w"))
        )
        assert stack.status("w")["state"] in ("starting", "active")
        assert "killed by SIGKILL" in stack.log()


def test_crash_at_start_backs_off_then_gives_up_without_a_storm(base):
    flapping = "[watchers.w.flapping]\nattempts = 2\nwindow = 5\nretry_in = 0.3\nmax_retries = 2\n"
    watcher = fake_watcher(numprocesses=1, env={"CRASH": "1"}) + flapping
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: stack.status("w")["state"] == "failed", timeout=20)
        status = stack.status("w")
        assert "flapping: gave up after 2 back-offs" in status["reason"]
        assert "exited with status 1" in status["reason"]
        assert count_started(stack, "w") == 6  # 2 attempts x (1 + max_retries 2)
        assert "is flapping" in stack.log()
        time.sleep(1.0)
        assert count_started(stack, "w") == 6
        assert "w.1 | crashed at import" in stack.log()


def test_backoff_state_is_visible_and_start_clears_failure(base):
    flapping = "[watchers.w.flapping]\nattempts = 1\nretry_in = 30\n"
    watcher = fake_watcher(numprocesses=1, env={"CRASH": "1"}) + flapping
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: stack.status("w")["state"] == "backoff")
        assert stack.status("w")["retry_in"] > 20
        stack.call("start", name="w")
        stack.wait_until(lambda: count_started(stack, "w") >= 2)


def test_command_that_cannot_start_fails_once_with_a_reason(base):
    text = '[watchers.w]\ncmd = "/nonexistent/m2b-binary --x"\nnumprocesses = 3\n'
    with running_stack(base, text) as stack:
        stack.wait_until(lambda: stack.status("w")["state"] == "failed")
        status = stack.status("w")
        assert "cannot start" in status["reason"]
        assert "No such file or directory" in status["reason"]
        time.sleep(1.0)
        assert stack.log().count("cannot start") == 1
        assert status["running"] == 0


def test_operator_stop_and_term_signal_are_not_flapping(base):
    flapping = "[watchers.w.flapping]\nattempts = 1\nretry_in = 30\n"
    with running_stack(base, fake_watcher(numprocesses=2) + flapping) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("stop", name="w")
        stack.wait_until(lambda: stack.status("w")["state"] == "stopped")
        stack.call("start", name="w")
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stack.call("signal", name="w", signal="TERM")
        stack.wait_until(lambda: count_started(stack, "w") == 6)
        stack.wait_until(lambda: stack.status("w")["state"] == "active")
        assert "is flapping" not in stack.log()


def test_respawn_false_lets_an_exited_process_go(base):
    text = '[watchers.w]\ncmd = ["$(python)", "-c", "pass"]\nnumprocesses = 2\nrespawn = false\n'
    with running_stack(base, text) as stack:
        stack.wait_until(lambda: stack.status("w")["numprocesses"] == 0)
        assert count_started(stack, "w") == 2


def test_process_ignoring_the_stop_signal_is_killed_after_graceful_timeout(base):
    watcher = fake_watcher(numprocesses=1, env={"IGNORE_TERM": "1"}, graceful_timeout=0.5)
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        stack.call("decr", name="w")
        took = stack.wait_until(lambda: not stack.processes("w"))
        assert 0.4 < took < 3
        assert "still running 0.5 s after stop: killing it" in stack.log()


# -- reload --


def test_reload_is_rolling_new_process_ready_before_an_old_one_stops(base):
    watcher = fake_watcher(numprocesses=2, env={"READY_AFTER": "0.4", "DRAIN": "0.2"})
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        old = set(stack.pids("w"))
        assert stack.call("reload", name="w") == {"watchers": ["w"]}
        seen_ready: list[int] = []

        def done() -> bool:
            ready = stack.pids("w")
            seen_ready.append(len(ready))
            return not old & {p["pid"] for p in stack.processes("w")}

        stack.wait_until(done, timeout=15)
        assert min(seen_ready) >= 2  # never fewer than numprocesses serving
        stack.wait_until(lambda: stack.status("w")["state"] == "active")
        assert len(stack.pids("w")) == 2


def test_sighup_reloads(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        (old,) = stack.pids("w")
        os.kill(stack.proc.pid, signal.SIGHUP)
        stack.wait_until(lambda: stack.pids("w") not in ([], [old]))
        stack.wait_until(lambda: stack.status("w")["generation"] == 1)


def test_restart_stops_then_starts(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        old = set(stack.pids("w"))
        stack.call("restart", name="w")
        stack.wait_until(lambda: len(set(stack.pids("w")) - old) == 2)


def test_max_requests_replaces_a_worker_without_dropping_below_numprocesses(base):
    watcher = fake_watcher(numprocesses=1, env={"SERVE_PER_TICK": "5"}, max_requests=40)
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        (first,) = stack.pids("w")
        stack.wait_until(lambda: first not in {p["pid"] for p in stack.processes("w")})
        assert "served 40 requests: replacing it" in stack.log()
        assert stack.pids("w")


# -- quit --


def test_quit_drains_and_leaves_no_orphan(base):
    watcher = fake_watcher(numprocesses=2, env={"DRAIN": "0.3"})
    shell = '[watchers.sh]\ncmd = ["sh", "-c", "sleep 300 & sleep 300; wait"]\n'
    with running_stack(base, watcher + shell) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2 and stack.pids("sh"))
        stack.wait_until(lambda: len(stack.descendants()) >= 5)
        everyone = stack.descendants()
        assert stack.call("quit") == {"quitting": True}
        assert stack.proc.wait(10) == 0
        assert stack.log().count("worker drained") == 2
        assert orphans(everyone) == []


def test_sigterm_is_a_graceful_quit(base):
    with running_stack(base, fake_watcher(numprocesses=1, env={"DRAIN": "0.2"})) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        children = stack.descendants()
        os.kill(stack.proc.pid, signal.SIGTERM)
        assert stack.proc.wait(10) == 0
        assert "worker drained" in stack.log()
        assert orphans(children) == []
        assert not (stack.rundir / "m2bridge.ctl").exists()


def test_second_sigint_kills_at_once(base):
    watcher = fake_watcher(numprocesses=1, env={"IGNORE_TERM": "1"}, graceful_timeout=60)
    with running_stack(base, watcher) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        children = stack.descendants()
        os.kill(stack.proc.pid, signal.SIGINT)
        time.sleep(0.3)
        os.kill(stack.proc.pid, signal.SIGINT)
        assert stack.proc.wait(10) == 0
        assert orphans(children) == []


def test_quit_stops_lower_priority_first(base):
    front = fake_watcher("front", numprocesses=1, priority=10)
    back = fake_watcher("back", numprocesses=1, env={"DRAIN": "0.5"})
    with running_stack(base, front + back) as stack:
        stack.wait_until(lambda: stack.pids("front") and stack.pids("back"))
        stack.call("quit")
        assert stack.proc.wait(10) == 0
        log = stack.log()
        assert log.index("back.1 | worker drained") < log.index("stopping front")


# -- the supervisor itself --


def test_idle_supervisor_uses_under_two_percent_cpu(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        proc = psutil.Process(stack.proc.pid)
        proc.cpu_percent(None)
        time.sleep(5)
        assert proc.cpu_percent(None) < 2.0


def test_second_supervisor_on_the_same_rundir_is_refused(base):
    with running_stack(base, fake_watcher(numprocesses=1)) as stack:
        result = subprocess.run(
            [*UP, str(stack.stack_file)], capture_output=True, text=True, timeout=20, check=False
        )
        assert result.returncode == 1
        assert "another supervisor is running" in result.stderr
        assert stack.call("list") == {"watchers": ["w"]}


def test_scaling_signals_during_quit_are_ignored_not_fatal(base):
    with running_stack(base, fake_watcher(numprocesses=1, env={"DRAIN": "1"})) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 1)
        os.kill(stack.proc.pid, signal.SIGTERM)
        stack.wait_until(lambda: "quitting" in stack.log())
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            os.kill(stack.proc.pid, signum)
        assert stack.proc.wait(10) == 0
        assert "SIGTTIN ignored: the supervisor is quitting" in stack.log()
        assert "worker drained" in stack.log()


def test_stats_files_of_exited_processes_are_removed(base):
    with running_stack(base, fake_watcher(numprocesses=2)) as stack:
        stack.wait_until(lambda: len(stack.pids("w")) == 2)
        stats_dir = stack.rundir / "stats"
        assert sorted(p.name for p in stats_dir.glob("*.json")) == ["w.1.json", "w.2.json"]
        stack.call("decr", name="w")
        stack.wait_until(lambda: len(stack.processes("w")) == 1)
        assert sorted(p.name for p in stats_dir.glob("*.json")) == ["w.1.json"]

"""plan.reconcile and the flapping record, with literal process tables and an injected now."""

from __future__ import annotations

import pytest

from m2bridge.supervisor.plan import (
    Desired,
    FlappingPolicy,
    History,
    Kill,
    Policy,
    ProcessView,
    Spawn,
    Stop,
    reconcile,
    record_exit,
    record_failure,
    record_spawn,
    reset,
)

POLICY = Policy(graceful_timeout=10.0)
NOW = 100.0


def procs(*wids: int, generation: int = 0, ready: bool = True) -> list[ProcessView]:
    return [ProcessView(pid=1000 + w, wid=w, generation=generation, ready=ready) for w in wids]


def plan(desired: Desired, processes: list[ProcessView], **kw: object) -> list[object]:
    policy = kw.pop("policy", POLICY)
    history = kw.pop("history", History())
    now = kw.pop("now", NOW)
    return list(reconcile(desired, processes, now, policy, history))  # type: ignore[arg-type]


def test_empty_watcher_spawns_every_slot_from_one():
    assert plan(Desired(3), []) == [Spawn(1, 0), Spawn(2, 0), Spawn(3, 0)]


def test_steady_state_does_nothing():
    assert plan(Desired(2), procs(1, 2)) == []


def test_incr_spawns_into_the_lowest_free_slots():
    assert plan(Desired(4), procs(1, 3)) == [Spawn(2, 0), Spawn(4, 0)]


def test_decr_stops_the_highest_slots():
    assert plan(Desired(1), procs(1, 2, 3)) == [Stop(1003), Stop(1002)]


def test_decr_to_zero_stops_everything():
    assert plan(Desired(0), procs(1, 2)) == [Stop(1002), Stop(1001)]


def test_stopping_process_keeps_its_slot():
    stopping = ProcessView(pid=7, wid=1, stopping_since=NOW - 1)
    assert plan(Desired(1), [stopping]) == [Spawn(2, 0)]


def test_stopping_process_is_killed_after_graceful_timeout():
    late = ProcessView(pid=7, wid=1, stopping_since=NOW - 10)
    fresh = ProcessView(pid=8, wid=2, stopping_since=NOW - 9.9)
    assert plan(Desired(0), [late, fresh]) == [Kill(7)]


def test_killed_process_is_not_killed_twice():
    killed = ProcessView(pid=7, wid=1, stopping_since=NOW - 60, killed=True)
    assert plan(Desired(0), [killed]) == []


def test_inactive_watcher_stops_every_running_process():
    stopping = ProcessView(pid=9, wid=3, stopping_since=NOW)
    assert plan(Desired(2, active=False), [*procs(1, 2), stopping]) == [Stop(1001), Stop(1002)]


def test_rolling_reload_first_spawns_one_new_process():
    assert plan(Desired(2, generation=1), procs(1, 2)) == [Spawn(3, 1)]


def test_rolling_reload_waits_while_the_new_process_is_not_ready():
    table = [*procs(1, 2), *procs(3, generation=1, ready=False)]
    assert plan(Desired(2, generation=1), table) == []


def test_rolling_reload_stops_the_oldest_once_the_new_one_is_ready_and_spawns_the_next():
    old = [
        ProcessView(pid=1, wid=1, started_at=5.0),
        ProcessView(pid=2, wid=2, started_at=1.0),
    ]
    new = ProcessView(pid=3, wid=3, generation=1, ready=True)
    assert plan(Desired(2, generation=1), [*old, new]) == [Stop(2), Spawn(4, 1)]


def test_rolling_reload_finishes_when_every_new_process_is_ready():
    table = [*procs(1, generation=0), *procs(3, 4, generation=1)]
    assert plan(Desired(2, generation=1), table) == [Stop(1001)]


def test_reload_of_a_single_process_keeps_it_until_its_replacement_serves():
    table = [*procs(1), *procs(2, generation=1, ready=False)]
    assert plan(Desired(1, generation=1), table) == []
    table = [*procs(1), *procs(2, generation=1)]
    assert plan(Desired(1, generation=1), table) == [Stop(1001)]


def test_non_rolling_restart_stops_all_then_spawns_after_they_exit():
    desired = Desired(1, generation=1, rolling=False)
    assert plan(desired, procs(1)) == [Stop(1001)]
    stopping = ProcessView(pid=1001, wid=1, stopping_since=NOW)
    assert plan(desired, [stopping]) == []
    assert plan(desired, []) == [Spawn(1, 1)]


def test_policy_without_rolling_overrides_a_rolling_reload():
    policy = Policy(rolling=False)
    assert plan(Desired(1, generation=1), procs(1), policy=policy) == [Stop(1001)]


def test_retiring_process_is_replaced_like_a_reload():
    worn = ProcessView(pid=1, wid=1, retire=True)
    assert plan(Desired(2), [worn, *procs(2)]) == [Spawn(3, 0)]
    new = ProcessView(pid=3, wid=3)
    assert plan(Desired(2), [worn, *procs(2), new]) == [Stop(1)]


def test_decr_during_reload_stops_the_stale_processes_first():
    table = [*procs(1, 2), *procs(3, generation=1)]
    assert plan(Desired(1, generation=1), table) == [Stop(1001), Stop(1002)]


def test_backoff_blocks_spawns_until_not_before():
    history = History(not_before=NOW + 1)
    assert plan(Desired(2), [], history=history) == []
    assert plan(Desired(2), [], history=history, now=NOW + 1) == [Spawn(1, 0), Spawn(2, 0)]


def test_gave_up_blocks_spawns_but_not_stops():
    history = record_failure(History())
    assert plan(Desired(1), procs(1, 2), history=history) == [Stop(1002)]
    assert plan(Desired(1), [], history=history) == []


def test_warmup_delay_staggers_spawns_one_at_a_time():
    policy = Policy(warmup_delay=2.0)
    assert plan(Desired(3), [], policy=policy) == [Spawn(1, 0)]
    history = record_spawn(History(), NOW)
    assert plan(Desired(3), procs(1), policy=policy, history=history, now=NOW + 1) == []
    assert plan(Desired(3), procs(1), policy=policy, history=history, now=NOW + 2) == [Spawn(2, 0)]


FLAP = FlappingPolicy(attempts=3, window=5.0, retry_in=1.0, max_delay=4.0, max_retries=3)


def crash(history: History, now: float, lifetime: float = 0.5) -> History:
    return record_exit(history, now, lifetime, FLAP)


def test_exits_below_attempts_do_not_delay_the_respawn():
    history = crash(crash(History(), 10.0), 10.5)
    assert history.not_before == 0.0
    assert history.failures == (10.0, 10.5)


def test_attempts_exits_within_the_window_start_a_backoff():
    history = crash(crash(crash(History(), 10.0), 10.5), 11.0)
    assert (history.retries, history.not_before, history.failures) == (1, 12.0, ())


def test_backoff_delay_doubles_and_is_capped():
    history = History()
    delays = []
    for round_start in (0.0, 20.0, 40.0):
        for offset in (0.0, 0.1, 0.2):
            history = crash(history, round_start + offset)
        delays.append(round(history.not_before - (round_start + 0.2), 3))
    assert delays == [1.0, 2.0, 4.0]
    for offset in (60.0, 60.1, 60.2):
        history = crash(history, offset)
    assert history.gave_up


def test_exits_after_giving_up_change_nothing():
    gave_up = History(retries=4, gave_up=True)
    assert crash(gave_up, 50.0) == gave_up
    assert crash(gave_up, 50.0, lifetime=60.0) == gave_up


def test_unlimited_retries_never_give_up():
    policy = FlappingPolicy(attempts=1, window=5.0, max_retries=-1, max_delay=8.0)
    history = History()
    for n in range(20):
        history = record_exit(history, float(n * 100), 0.1, policy)
    assert not history.gave_up
    assert history.not_before == 1900.0 + 8.0


def test_exits_outside_the_window_are_forgotten():
    history = crash(crash(History(), 10.0), 10.5)
    history = crash(history, 16.0)
    assert history.failures == (16.0,)
    assert history.retries == 0


def test_exit_after_a_long_healthy_life_clears_the_record():
    history = History(failures=(1.0, 2.0), retries=2)
    assert crash(history, 3.0, lifetime=5.0) == History()


def test_reset_forgets_everything_but_the_last_spawn():
    history = History(failures=(1.0,), retries=4, not_before=50.0, gave_up=True, last_spawn_at=9.0)
    assert reset(history) == History(last_spawn_at=9.0)


@pytest.mark.parametrize("count", [0, 1, 5])
def test_reconcile_never_spawns_more_than_desired_when_empty(count):
    assert len(plan(Desired(count), [])) == count

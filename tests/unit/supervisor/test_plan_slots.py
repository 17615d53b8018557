"""Slot choice: a process that died is replaced in its own slot (``History.vacant``), not in
the lowest free one; other spawns take the lowest free slots."""

from __future__ import annotations

from m2bridge.supervisor.plan import (
    Desired,
    History,
    Policy,
    ProcessView,
    Spawn,
    reconcile,
    record_spawn,
    record_vacancy,
    reset,
)

POLICY = Policy(graceful_timeout=10.0)
NOW = 100.0


def procs(*wids: int) -> list[ProcessView]:
    return [ProcessView(pid=1000 + w, wid=w) for w in wids]


def test_replacement_of_a_dead_process_takes_its_slot_not_the_lowest_free():
    history = record_vacancy(History(), 6)  # slots 4, 5, 6 after a rolling reload; 6 died
    assert reconcile(Desired(3), procs(4, 5), NOW, POLICY, history) == [Spawn(6, 0)]


def test_without_a_vacancy_the_lowest_free_slot_is_taken():
    assert reconcile(Desired(3), procs(4, 5), NOW, POLICY, History()) == [Spawn(1, 0)]


def test_two_dead_processes_get_their_slots_back_oldest_death_first():
    history = record_vacancy(record_vacancy(History(), 5), 2)
    assert reconcile(Desired(3), procs(4), NOW, POLICY, history) == [Spawn(5, 0), Spawn(2, 0)]


def test_more_spawns_than_vacancies_fill_the_rest_from_the_lowest_free_slot():
    history = record_vacancy(History(), 7)
    actions = reconcile(Desired(3), procs(2), NOW, POLICY, history)
    assert actions == [Spawn(7, 0), Spawn(1, 0)]


def test_a_vacant_slot_held_by_a_live_process_is_not_given_twice():
    history = record_vacancy(History(), 2)
    assert reconcile(Desired(3), procs(2, 3), NOW, POLICY, history) == [Spawn(1, 0)]


def test_the_same_slot_dying_twice_is_one_vacancy():
    assert record_vacancy(record_vacancy(History(), 3), 3).vacant == (3,)


def test_spawning_into_a_slot_ends_its_vacancy_and_keeps_the_others():
    history = record_vacancy(record_vacancy(History(), 3), 5)
    after = record_spawn(history, NOW, 3)
    assert (after.vacant, after.last_spawn_at) == ((5,), NOW)


def test_start_after_a_failure_keeps_the_vacant_slots():
    history = record_vacancy(History(failures=(NOW,), gave_up=True), 4)
    assert reset(history).vacant == (4,)

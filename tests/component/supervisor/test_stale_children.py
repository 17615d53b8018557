"""The rundir's ``children`` record: a supervisor starting after one that was SIGKILLed ends the
processes still running from the record (and never a recycled pid), then forgets them."""

from __future__ import annotations

import subprocess

from m2bridge.supervisor.rundir import (
    CHILDREN_FILE,
    kill_stale_children,
    record_children,
    start_time,
)


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_recorded_children_still_running_are_killed_with_their_group_and_forgotten(tmp_path):
    child = sleeper()
    try:
        record_children(tmp_path, [child.pid])
        assert kill_stale_children(tmp_path) == [child.pid]
        assert child.wait(5) == -9
        assert not (tmp_path / CHILDREN_FILE).exists()
    finally:
        child.kill()
        child.wait()


def test_a_recorded_pid_with_another_start_time_is_not_killed(tmp_path):
    child = sleeper()
    try:
        started = start_time(child.pid)
        assert started is not None
        (tmp_path / CHILDREN_FILE).write_text(f"{child.pid} {started - 1}\n")
        assert kill_stale_children(tmp_path) == []
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_recording_no_child_removes_the_file_and_nothing_is_stale(tmp_path):
    child = sleeper()
    try:
        record_children(tmp_path, [child.pid])
        assert (tmp_path / CHILDREN_FILE).read_text() == f"{child.pid} {start_time(child.pid)}\n"
        record_children(tmp_path, [])
        assert not (tmp_path / CHILDREN_FILE).exists()
        assert kill_stale_children(tmp_path) == []
    finally:
        child.kill()
        child.wait()


def test_an_exited_child_is_not_recorded(tmp_path):
    child = sleeper()
    child.kill()
    child.wait()
    record_children(tmp_path, [child.pid])
    assert not (tmp_path / CHILDREN_FILE).exists()

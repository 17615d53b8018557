"""``status``: which watchers are not running as asked (``ctl status`` then exits 4)."""

from __future__ import annotations

from typing import Any

import pytest

from m2bridge.supervisor.commands.status import StatusCommand, not_as_asked


def row(name: str, state: str, wanted: int = 1, running: int = 1, ready: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "numprocesses": wanted,
        "running": running,
        "ready": ready,
        "stopping": 0,
        "reason": "",
    }


@pytest.mark.parametrize("state", ["active", "reloading"])
def test_serving_states_are_as_asked(state):
    assert not_as_asked([row("w", state)]) == []


@pytest.mark.parametrize("state", ["stopped", "starting", "backoff", "failed"])
def test_other_states_are_not_as_asked(state):
    assert [w["name"] for w in not_as_asked([row("w", state, running=0, ready=0)])] == ["w"]


def test_draining_after_a_scale_down_is_as_asked_but_a_stop_is_not():
    scaled_down = row("w", "stopping", wanted=2, running=2, ready=2)
    being_stopped = row("w", "stopping", wanted=2, running=0, ready=0)
    assert not_as_asked([scaled_down]) == []
    assert not_as_asked([being_stopped]) == [being_stopped]


def test_text_names_the_watchers_not_as_asked_after_the_table():
    data = {"watchers": [row("mongrel2", "stopped", running=0, ready=0), row("hello", "active")]}
    lines = StatusCommand().format(data).splitlines()
    assert lines[-1] == "not running as asked: mongrel2 (stopped)"
    assert len(lines) == 4


def test_text_has_no_trailer_when_everything_runs():
    text = StatusCommand().format({"watchers": [row("hello", "active")]})
    assert "not running as asked" not in text
    assert len(text.splitlines()) == 2

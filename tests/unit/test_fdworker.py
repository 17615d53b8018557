"""The pure parts of the fd-path worker: option parsing, request limit, counters, stats file."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from m2bridge.config import WorkerConfig
from m2bridge.errors import ConfigError
from m2bridge.fdworker import (
    WorkerState,
    open_access_log,
    open_listener,
    parse_bind,
    request_limit,
    setup_logging,
    write_stats,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("localhost:0", ("localhost", 0)),
        (":8080", ("0.0.0.0", 8080)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_parse_bind_splits_host_and_port(spec, expected):
    assert parse_bind(spec) == expected


@pytest.mark.parametrize("spec", ["8000", "host:", "host:http", "host:65536", "[::1:80", "::1]:80"])
def test_parse_bind_rejects_bad_specs_with_a_clear_error(spec):
    with pytest.raises(ConfigError, match="--bind"):
        parse_bind(spec)


def test_request_limit_is_zero_when_max_requests_is_off():
    assert request_limit(0, 50) == 0


def test_request_limit_adds_jitter_within_bounds():
    rng = random.Random(7)
    limits = {request_limit(100, 10, rng) for _ in range(200)}
    assert min(limits) >= 100
    assert max(limits) <= 110
    assert len(limits) > 1


def test_request_limit_without_jitter_is_exact():
    assert request_limit(100, 0) == 100


def test_note_served_asks_for_a_stop_at_the_limit():
    state = WorkerState(limit=2)
    state.note_served()
    assert not state.stop.is_set()
    state.note_served()
    assert state.stop.is_set()
    assert state.served == 2


def test_note_served_never_stops_without_a_limit():
    state = WorkerState()
    for _ in range(1000):
        state.note_served()
    assert not state.stop.is_set()


def test_snapshot_has_the_published_keys():
    state = WorkerState(served=3, in_flight=1, errors=2, started_at=12.5)
    assert state.snapshot() == {
        "pid": os.getpid(),
        "served": 3,
        "in_flight": 1,
        "started_at": 12.5,
        "errors": 2,
    }


def test_write_stats_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "stats.json"
    write_stats(str(path), {"served": 1})
    write_stats(str(path), {"served": 2})
    assert json.loads(path.read_text()) == {"served": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_write_stats_to_a_missing_directory_logs_and_does_not_raise(tmp_path, caplog):
    write_stats(str(tmp_path / "missing" / "stats.json"), {"served": 1})
    assert "cannot write stats file" in caplog.text


def test_open_listener_without_fd_or_bind_is_a_config_error():
    with pytest.raises(ConfigError, match="--fd N or --bind"):
        open_listener(WorkerConfig(app="x:app"))


def test_open_access_log_dash_is_stderr_and_none_is_off():
    assert open_access_log("-") is sys.stderr
    assert open_access_log(None) is None


def test_open_access_log_in_a_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--access-log"):
        open_access_log(str(tmp_path / "missing" / "access.log"))


def test_setup_logging_rejects_an_unknown_level():
    with pytest.raises(ConfigError, match="--log-level"):
        setup_logging("loud")


def test_importing_the_module_does_not_monkey_patch():
    code = (
        "import sys, gevent.monkey, m2bridge.fdworker; "
        "sys.exit(gevent.monkey.is_anything_patched())"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

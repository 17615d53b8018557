"""The pure parts of the fd-path worker: option parsing, the request limit, the counters."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from m2bridge.config import WorkerConfig, request_limit
from m2bridge.errors import ConfigError
from m2bridge.worker.fd_worker import WorkerState, open_listener, parse_bind


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
    state.note_served(200)
    assert not state.stop.is_set()
    state.note_served(200)
    assert state.stop.is_set()
    assert state.stats.served == 2


def test_note_served_never_stops_without_a_limit():
    state = WorkerState()
    for _ in range(1000):
        state.note_served(200)
    assert not state.stop.is_set()


@pytest.mark.parametrize(
    ("status", "is_error"), [(200, False), (404, False), (500, True), (None, True)]
)
def test_note_served_counts_5xx_and_cut_off_responses_as_errors(status, is_error):
    state = WorkerState()
    state.note_served(status)
    assert (state.stats.served, state.stats.errors) == (1, int(is_error))


def test_open_listener_without_fd_or_bind_is_a_config_error():
    with pytest.raises(ConfigError, match="--fd N or --bind"):
        open_listener(WorkerConfig(app="x:app"))


def test_importing_the_module_does_not_monkey_patch():
    code = (
        "import sys, gevent.monkey, m2bridge.worker.fd_worker; "
        "sys.exit(gevent.monkey.is_anything_patched())"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

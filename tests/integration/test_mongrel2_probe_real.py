"""Mongrel2Probe against the real mongrel2: its control port counts our client connections and
its tasks, and stops answering once the server is stopped; ``control_endpoint`` finds the socket
the real binary binds (the default ``run/control`` and a configured ``control_port``)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from m2bridge.supervisor.mongrel2_probe import Mongrel2Probe
from m2bridge.supervisor.mongrel2_status import control_endpoint
from tests.helpers.mongrel2 import (
    HandlerSpec,
    Mongrel2Server,
    free_port,
    m2sh_load,
    make_conf,
    run_mongrel2,
    start_mongrel2,
    stop_process,
)
from tests.helpers.stack import RunningStack, running_stack

INTERVAL = 0.5
TIMEOUT = 1.0
AS_ROOT = os.geteuid() == 0


def control_port_of(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (value,) = conn.execute("SELECT control_port FROM server").fetchone()
    return str(value or "")


def drive(
    probe: Mongrel2Probe, until: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    """Run the probe as the supervisor's loop does (real clock, short polls) until ``until``."""
    deadline = time.monotonic() + seconds
    snapshot = probe.snapshot(time.monotonic())
    while time.monotonic() < deadline:
        probe.tick(time.monotonic())
        if probe.socket.poll(50, zmq.POLLIN):
            probe.on_readable(time.monotonic())
        snapshot = probe.snapshot(time.monotonic())
        if until(snapshot):
            return snapshot
    raise AssertionError(f"not reached in {seconds} s: {snapshot}")


@pytest.fixture
def server(base: Path) -> Iterator[Mongrel2Server]:
    with run_mongrel2(base / "m2", [HandlerSpec("/h")]) as server:
        yield server


def test_the_default_control_port_is_run_control_inside_the_chroot(server):
    assert control_port_of(server.chroot / "config.sqlite") == ""  # what m2sh writes
    endpoint = control_endpoint("", str(server.chroot), AS_ROOT)
    assert endpoint == f"ipc://{server.chroot}/run/control"
    assert (server.chroot / "run" / "control").is_socket()


def test_probe_counts_connections_and_tasks_then_sees_the_stop(server):
    endpoint = control_endpoint("", str(server.chroot), AS_ROOT)
    probe = Mongrel2Probe(endpoint, interval=INTERVAL, timeout=TIMEOUT)
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
    try:
        snapshot = drive(probe, lambda s: s["answering"] and s["connections"] >= 3, seconds=10)
        assert snapshot["tasks"] > 0
        assert snapshot["error"] == ""

        stop_process(server.proc)  # by PID, and reaped
        stopped_at = time.monotonic()
        snapshot = drive(probe, lambda s: not s["answering"], seconds=10)
        # The request in flight (or the next, at most one interval later) times out.
        assert time.monotonic() - stopped_at <= INTERVAL + TIMEOUT + 1.0
        assert snapshot == {
            "endpoint": endpoint,
            "answering": False,
            "connections": None,
            "tasks": None,
            "error": f"no answer in {TIMEOUT:g} s",
            "failing": True,
        }
    finally:
        for client in clients:
            client.close()
        probe.close()


@pytest.mark.parametrize(
    ("control_port", "where"),
    [("ipc://run/probe", "run/probe"), ("ipc:///run/probe", "run/probe"), ("tcp", None)],
    ids=["relative-ipc", "absolute-ipc", "tcp"],
)
def test_a_configured_control_port_is_found(base, control_port, where):
    chroot = base / "m2"
    chroot.mkdir()
    port = free_port()
    if control_port.startswith("ipc:///") and not AS_ROOT:
        where = None  # no chroot: mongrel2 binds the absolute path itself
    if control_port == "tcp":
        control_port = f"tcp://127.0.0.1:{free_port()}"
    conf, db = chroot / "mongrel2.conf", chroot / "config.sqlite"
    conf.write_text(make_conf(port, [HandlerSpec("/h")]))
    m2sh_load(conf, db)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE server SET control_port = ?", (control_port,))
    endpoint = control_endpoint(control_port_of(db), str(chroot), AS_ROOT)
    with start_mongrel2(chroot, db, "m2bridge-test", port):
        if where is not None:
            assert (chroot / where).is_socket()
            assert endpoint == f"ipc://{chroot}/{where}"
        probe = Mongrel2Probe(endpoint, interval=INTERVAL, timeout=TIMEOUT)
        try:
            snapshot = drive(probe, lambda s: s["answering"], seconds=10)
        finally:
            probe.close()
    assert snapshot["tasks"] > 0
    assert isinstance(snapshot["connections"], int)


def probed(stack: RunningStack) -> dict[str, Any]:
    """The supervisor's probe of its one Mongrel2 watcher, as ``status`` reports it."""
    (probe,) = stack.call("status")["mongrel2"]
    return dict(probe)


def test_a_reload_that_moves_the_control_port_moves_the_supervisors_probe(base):
    port = free_port()
    conf = base / "mongrel2.conf"
    text = make_conf(port, [HandlerSpec("/h")])
    conf.write_text(text.replace('name="main",', 'name="main", control_port="ipc://run/probe-a",'))
    stack_text = f'[watchers.m2]\ntype = "mongrel2"\nconfig = "{conf}"\ngraceful_timeout = 5\n'
    with running_stack(base, stack_text) as stack:
        stack.wait_until(lambda: probed(stack)["answering"], timeout=15)
        assert probed(stack)["endpoint"].endswith("/run/probe-a")
        conf.write_text(
            text.replace('name="main",', 'name="main", control_port="ipc://run/probe-b",')
        )
        assert stack.call("reload", name="m2")
        stack.wait_until(
            lambda: (
                probed(stack)["endpoint"].endswith("/run/probe-b") and probed(stack)["answering"]
            ),
            timeout=15,
        )

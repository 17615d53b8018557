"""sd_notify against a fake ``NOTIFY_SOCKET``: a Unix datagram socket the test binds, and a
real `m2bridge up` that notifies it as systemd's would be (READY, STATUS, WATCHDOG, RELOADING,
STOPPING); children never see the variables."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from m2bridge.supervisor.notify import DatagramSender, Notifier
from tests.helpers.stack import fake_watcher, running_stack
from tests.helpers.worker import REPO_ROOT

#: WATCHDOG_USEC of the test: a ping every 0.2 s, systemd's deadline 0.4 s.
WATCHDOG_USEC = 400_000
UNIT_FILE = REPO_ROOT / "examples" / "systemd" / "m2bridge.service"


class FakeSystemd:
    """The receiving end of ``NOTIFY_SOCKET``: a thread receives every datagram at once (so its
    arrival time is true while the test does something else) and queues it, parsed."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.queue: queue.SimpleQueue[tuple[float, dict[str, str]]] = queue.SimpleQueue()
        self.received: list[tuple[float, dict[str, str]]] = []
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while data := self.sock.recv(4096):  # b"" once shut down
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            self.queue.put((time.monotonic(), fields))

    def wait_for(self, key: str, value: str = "1", timeout: float = 10.0) -> dict[str, str]:
        """Take datagrams until one has ``key=value``; returns that datagram's fields."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, fields = self.queue.get(timeout=left)
            except queue.Empty:
                break
            self.received.append((at, fields))
            if fields.get(key) == value:
                return fields
        pytest.fail(f"no {key}={value} in {timeout} s; got {[f for _, f in self.received]}")

    def drain(self) -> list[tuple[float, dict[str, str]]]:
        """Everything received so far."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.received.append(self.queue.get_nowait())
        return self.received

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def systemd(base: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(base / "notify"))
    yield fake
    fake.close()


def test_up_notifies_ready_status_watchdog_reloading_and_stopping(base, systemd, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(base / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("M2B_INHERITED", "yes")  # copy_env still passes everything else
    env_file = base / "child.env"
    text = fake_watcher("w", numprocesses=2, env={"READY_AFTER": "0.3"})
    text += f'\n[watchers.envdump]\ncmd = ["sh", "-c", "env > {env_file}; exec sleep 30"]\n'
    with running_stack(base, text, wait=False) as stack:
        ready = systemd.wait_for("READY")
        states = [w["state"] for w in stack.call("status")["watchers"]]
        assert states == ["active", "active"]
        statuses = [fields["STATUS"] for _, fields in systemd.received if "STATUS" in fields]
        assert all("not running as asked: w (starting)" in text for text in statuses[:-1])
        assert len(statuses) > 1
        assert statuses[-1] == "2 watchers, 3 processes, healthy"
        assert ready.get("STATUS", statuses[-1]) == statuses[-1]

        stack.wait_until(lambda: "PATH=" in env_file.read_text() if env_file.exists() else False)
        child_env = env_file.read_text()
        assert "M2B_INHERITED=yes" in child_env
        assert "NOTIFY_SOCKET" not in child_env
        assert "WATCHDOG_" not in child_env

        old = set(stack.pids("w"))
        asked_at = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        stack.call("reload", name="w")
        reloading = systemd.wait_for("RELOADING")
        assert asked_at <= int(reloading["MONOTONIC_USEC"]) <= time.monotonic_ns() // 1000
        systemd.wait_for("READY")
        assert stack.status("w")["state"] == "active"
        assert not old & set(stack.pids("w"))

        stack.call("quit")
        systemd.wait_for("STOPPING")
        assert stack.proc.wait(10) == 0
    pings = [at for at, fields in systemd.drain() if "WATCHDOG" in fields]
    assert len(pings) >= 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    assert max(gaps) < WATCHDOG_USEC / 1e6  # systemd would never have fired


def test_notifier_sends_to_an_abstract_socket(base):
    name = f"@m2bridge-test-{os.getpid()}-{base.name}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name[1:])
    receiver.settimeout(5)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": name})
    try:
        notifier.update(0.0, as_asked=True, settled=True, status="1 watcher, healthy")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=1 watcher, healthy"
    finally:
        notifier.close()
        receiver.close()


def test_a_failed_send_is_logged_once_and_never_raised(base, caplog):
    sender = DatagramSender(str(base / "nobody-listens"))
    with caplog.at_level(logging.WARNING):
        sender(b"READY=1")
        sender(b"WATCHDOG=1")
    sender.close()
    sender(b"STOPPING=1")  # closed: ignored
    assert caplog.text.count("cannot notify systemd") == 1


def test_the_example_unit_file_passes_systemd_analyze_verify(base):
    """Only where systemd-analyze exists; its ExecStart must name an executable, so the copy
    checked runs this interpreter."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = base / "m2bridge.service"
    text = UNIT_FILE.read_text().replace(
        "/path/to/venv/bin/m2bridge", f"{sys.executable} -m m2bridge"
    )
    unit.write_text(text)
    checked = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")

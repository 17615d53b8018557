"""Test hosts: a small LAN of Linux network namespaces joined by a bridge, removed afterwards.

``lan(names=("front", "w1", "w2"))`` creates one namespace per host and one more holding a
bridge (so the root namespace is untouched), a veth pair from each host into the bridge, and
the addresses 10.X.Y.1/24, .2, ... in the order of ``names`` on a random private /24, with
``lo`` up everywhere. Namespace names carry a random suffix, so parallel test processes never
collide. Each ``Host`` runs commands inside its namespace (``ip netns exec``); on exit every
process started there, and any other the kernel still lists in the namespace, is killed by
PID, and every namespace is deleted, even after a failure. Creating the namespaces needs root
(CI runs as root): a failure fails the test with the reason, it never skips.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

IP = shutil.which("ip") or "/usr/sbin/ip"
#: Seconds any one ``ip`` command may take.
IP_TIMEOUT = 10.0


@dataclass
class Host:
    """One test host: a network namespace with one address on the LAN."""

    name: str
    namespace: str
    address: str
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run inside this host's namespace."""
        return [IP, "netns", "exec", self.namespace, *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in this host (``ip netns exec`` execs it: same PID), killed on exit."""
        proc: subprocess.Popen[Any] = subprocess.Popen(self.argv(argv), **kwargs)
        self.processes.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every PID the kernel lists in this host's namespace (``ip netns pids``)."""
        return _pids_in(self.namespace)

    def run(
        self, argv: Sequence[str], timeout: float = 20.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this host to completion (text output captured, never raises on
        a non-zero exit)."""
        return subprocess.run(
            self.argv(argv), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )


def _ip(*argv: str) -> None:
    """Run ``ip ARGV``; fail the test with its error output if it does not succeed."""
    try:
        result = subprocess.run(
            [IP, *argv], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"test hosts: `ip {' '.join(argv)}` failed: {exc}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(
            f"test hosts: `ip {' '.join(argv)}` failed ({result.returncode}): "
            f"{result.stderr.strip()} (network namespaces need root and iproute2)",
            pytrace=False,
        )


def random_subnet() -> str:
    """``10.X.Y``: a random private /24 prefix."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


@contextlib.contextmanager
def lan(names: Sequence[str] = ("front", "w1", "w2")) -> Iterator[dict[str, Host]]:
    """Create the hosts ``names`` on one bridged /24; yield them by name; remove everything."""
    if len(set(names)) != len(names) or not 0 < len(names) < 250:
        raise ValueError(f"lan: expected up to 249 distinct host names, got {list(names)}")
    prefix = f"m2b-{secrets.token_hex(3)}"
    subnet = random_subnet()
    bridge_ns = f"{prefix}-br"
    hosts = {
        name: Host(name, f"{prefix}-{name}", f"{subnet}.{index}")
        for index, name in enumerate(names, start=1)
    }
    created: list[str] = []
    try:
        for namespace in [bridge_ns, *(host.namespace for host in hosts.values())]:
            _ip("netns", "add", namespace)
            created.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", bridge_ns, "link", "set", "br0", "up")
        for index, host in enumerate(hosts.values(), start=1):
            _plug(bridge_ns, f"port{index}", host)
        yield hosts
    finally:
        _remove(list(hosts.values()), created)


def _plug(bridge_ns: str, port: str, host: Host) -> None:
    """A veth pair: ``port`` on the bridge, ``eth0`` with the host's address in its namespace."""
    _ip("-n", bridge_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0")
    _ip("-n", bridge_ns, "link", "set", "eth0", "netns", host.namespace)
    _ip("-n", bridge_ns, "link", "set", port, "master", "br0", "up")
    _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
    _ip("-n", host.namespace, "link", "set", "eth0", "up")


def _remove(hosts: list[Host], namespaces: list[str]) -> None:
    """Kill every process of the hosts by PID (those started, then any the kernel still
    lists in the namespaces), reap them, and delete the namespaces."""
    for host in hosts:
        for proc in host.processes:
            _kill(proc.pid)
    for namespace in namespaces:
        for pid in _pids_in(namespace):
            _kill(pid)
    for host in hosts:
        for proc in host.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
    for namespace in reversed(namespaces):
        subprocess.run(
            [IP, "netns", "del", namespace], capture_output=True, timeout=IP_TIMEOUT, check=False
        )


def _pids_in(namespace: str) -> list[int]:
    """The PIDs the kernel lists in ``namespace`` (``ip netns pids``)."""
    result = subprocess.run(
        [IP, "netns", "pids", namespace],
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT,
        check=False,
    )
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

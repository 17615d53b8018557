"""HTTP clients of the tests: one GET, a raw exchange, a threaded load loop, and wrk runs.

Everything talks to 127.0.0.1 only. ``LoadLoop`` is what counts lost requests (one request
outstanding per client thread, every exception or non-200 counted): a request never answered
leaves a wrk connection hanging without wrk counting it (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field


def get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def exchange(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send ``raw``; return what came back until the headers ended, the peer closed, or
    ``timeout`` seconds passed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # Mongrel2 may close before reading all of it
            sock.sendall(raw)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        return data


def status_of(reply: bytes) -> int | None:
    """The HTTP status of a raw reply, or None for a close without one."""
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


@dataclass
class LoadLoop:
    """Threads sending GETs over keep-alive connections; any exception or non-200 is a failure.

    Leaving the block waits for each thread's outstanding request (up to ``timeout``), so a
    request lost while the load ran is counted as failed.
    """

    port: int
    threads: int = 6
    timeout: float = 3.0
    path: str = "/"
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Requests answered or failed so far."""
        with self._lock:
            return self.ok + self.failed

    def __enter__(self) -> LoadLoop:
        for _ in range(self.threads):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(self.timeout + 2)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        while not self._stop.is_set():
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                good = response.status == 200
                error = "" if good else f"status {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                good, error = False, repr(exc)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            with self._lock:
                self.ok += good
                self.failed += not good
                if error:
                    self.errors.append(error)
        conn.close()


@dataclass
class WrkResult:
    requests: int
    socket_errors: dict[str, int]
    non_2xx: int
    text: str

    @property
    def failed(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx


def start_wrk(port: int, seconds: int, connections: int = 8) -> subprocess.Popen[str]:
    """A bounded wrk run (one thread, ``connections`` keep-alive connections, 2 s timeout)."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s"]
    return subprocess.Popen([*argv, f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True)


def finish_wrk(proc: subprocess.Popen[str], timeout: float = 30) -> WrkResult:
    """Wait for a wrk run and parse its counts."""
    out, _ = proc.communicate(timeout=timeout)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    found = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if found:
        errors = dict(zip(errors, map(int, found.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(requests, errors, int(non_2xx.group(1)) if non_2xx else 0, out)

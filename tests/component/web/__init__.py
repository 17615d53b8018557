"""The web console's component tests, and ``running_console``, the one way the component and
browser tests run a real ``m2bridge web`` process: on a free port, waited for until it
answers, always stopped by PID."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import stop_by_pid
from tests.helpers.waiting import wait_until

WEB = [sys.executable, "-m", "m2bridge", "web"]


@dataclass
class Console:
    """A running ``m2bridge web``."""

    proc: subprocess.Popen[bytes]
    port: int
    log_file: Path
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request (with the Bearer token when the console has one and ``auth``);
        a dict ``body`` goes as JSON. Returns (status, headers, body)."""
        sent = dict(headers or {})
        if auth and self.token:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        data = body
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=data, headers=sent)  # type: ignore[arg-type]
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def state(self) -> dict[str, Any]:
        status, _, body = self.request("GET", "/api/state")
        assert status == 200, body
        state: dict[str, Any] = json.loads(body)
        return state

    def command(
        self, command: str, name: str, headers: dict[str, str] | None = None, csrf: bool = True
    ) -> tuple[int, dict[str, Any]]:
        """POST /api/command (with the CSRF header unless ``csrf`` is False)."""
        sent = dict(headers or {})
        if csrf:
            sent.setdefault("X-M2bridge-CSRF", self.state()["csrf"])
        status, _, body = self.request(
            "POST", "/api/command", {"command": command, "name": name}, sent
        )
        return status, json.loads(body)


def answers(console: Console) -> bool:
    try:
        console.request("GET", "/api/state", auth=False)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running_console(
    base: Path,
    *args: str,
    token: str | None = None,
    interval: float = 0.25,
    env: dict[str, str] | None = None,
) -> Iterator[Console]:
    """Run ``m2bridge web ARGS`` on a free loopback port (with ``token`` in a token file);
    wait until it answers; always stop it by PID (TERM, then KILL)."""
    port = free_port()
    argv = [*WEB, "--bind", f"127.0.0.1:{port}", "--interval", str(interval), *args]
    if token is not None:
        token_file = base / "web.token"
        token_file.write_text(token + "\n")
        argv += ["--web-token-file", str(token_file)]
    log_file = base / f"web-{port}.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    console = Console(proc, port, log_file, token)
    try:
        if not wait_until(lambda: proc.poll() is not None or answers(console), 20, 0.05):
            pytest.fail(f"m2bridge web did not answer within 20 s:\n{console.log()}")
        if proc.poll() is not None:
            pytest.fail(f"m2bridge web exited ({proc.returncode}):\n{console.log()}")
        yield console
    finally:
        stop_by_pid(proc.pid, proc)

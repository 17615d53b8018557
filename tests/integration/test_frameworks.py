"""Real Flask, Django, Bottle and Falcon apps behind the real Mongrel2 and one m2bridge worker,
compared request by request with gunicorn serving the very same app.

The worker runs with ``--validate``, so any PEP 3333 violation on either side is a 500 here.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.mongrel2 import HandlerSpec, free_port, run_mongrel2, stop_process
from tests.helpers.waiting import wait_until
from tests.helpers.worker import APPS, REPO_ROOT, run_worker

APP = f"{APPS}.frameworks:app"
FRAMEWORKS = ("flask", "django", "bottle", "falcon")
TEMP_STORE = "/tmp/upload.XXXXXX"
BOUNDARY = "m2bridge-test-boundary-7c0e21d2"
# 60 KiB: beyond limits.content_length (async upload), below bottle's MEMFILE_MAX (102400),
# past which bottle refuses a multipart part with "Memory limit reached" under any server.
FILE_DATA = bytes(range(256)) * 240


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def multipart() -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhéllo\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="data.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + FILE_DATA
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


CASES = {
    "index": Case("GET", "/"),
    "json": Case("GET", "/json?a=1&a=2&b=%C3%A9"),
    "redirect": Case("GET", "/redirect"),
    "cookies": Case("GET", "/cookies"),
    "form": Case(
        "POST", "/form", b"a=1&a=2&b=hello+world%21",
        (("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "c1=v1; c2=v2")),
    ),
    "upload": Case(
        "POST", "/upload", multipart(),
        (("Content-Type", f"multipart/form-data; boundary={BOUNDARY}"),),
    ),
    "stream": Case("GET", "/stream"),
    "unicode": Case("GET", "/unicode/caf%C3%A9"),
    "missing": Case("GET", "/missing/page"),
    "error": Case("GET", "/error"),
}  # fmt: skip
COMPARED_HEADERS = ("content-type", "location", "content-length")


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: bytes


@contextlib.contextmanager
def run_gunicorn(directory, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = open(directory / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--log-level", "warning", APP],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "SCRIPT_NAME": ""},
    )  # fmt: skip
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        stop_process(proc, timeout=10)
        log.close()


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    def listening() -> bool:
        assert proc.poll() is None, "gunicorn exited at start-up"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    assert wait_until(listening, timeout, interval=0.05), "gunicorn did not listen"


@pytest.fixture(scope="module")
def ports(tmp_path_factory):
    root = tmp_path_factory.mktemp("frameworks")
    chroot = root / "m2"
    handler = HandlerSpec(route="/", protocol="json")
    extra = ["--m2-chroot", str(chroot), "--upload-temp-store", TEMP_STORE]
    gunicorn_port = free_port()
    with (
        run_mongrel2(chroot, [handler], {"upload.temp_store": TEMP_STORE}) as server,
        run_worker(root / "w", APP, [handler.send_spec], [handler.recv_spec], extra) as worker,
        run_gunicorn(root, gunicorn_port),
    ):
        yield server.port, gunicorn_port
    assert worker.proc.returncode == 0, worker.log()


def fetch(port: int, framework: str, case: Case) -> Result:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(case.method, f"/{framework}{case.path}", body=case.body,
                     headers=dict(case.headers))  # fmt: skip
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    headers = {
        name.lower(): value.replace(str(port), "PORT")
        for name, value in response.getheaders()
        if name.lower() in COMPARED_HEADERS
    }
    cookies = sorted(response.headers.get_all("Set-Cookie") or [])
    return Result(response.status, headers, cookies, body.replace(str(port).encode(), b"PORT"))


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_response_matches_gunicorn(ports, framework, case):
    ours = fetch(ports[0], framework, CASES[case])
    theirs = fetch(ports[1], framework, CASES[case])
    if "content-length" not in theirs.headers:  # a stream: framing may differ, bytes may not
        ours.headers.pop("content-length", None)
    assert ours == theirs


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_framework_semantics_through_mongrel2(ports, framework):
    port = ports[0]
    assert fetch(port, framework, CASES["index"]).body == f"hello {framework}".encode()
    moved = fetch(port, framework, CASES["redirect"])
    assert moved.status == 302
    assert moved.headers["location"].endswith("/json?from=redirect")
    cookies = fetch(port, framework, CASES["cookies"]).cookies
    assert len(cookies) == 2
    assert any(c.startswith("first=1") for c in cookies)
    form = json.loads(fetch(port, framework, CASES["form"]).body)
    assert form["form"]["b"] == ["hello world!"]
    assert form["cookies"] == {"c1": "v1", "c2": "v2"}
    upload = json.loads(fetch(port, framework, CASES["upload"]).body)
    assert upload["size"] == len(FILE_DATA)
    assert upload["sha256"] == hashlib.sha256(FILE_DATA).hexdigest()
    assert upload["note"] == "héllo"
    assert fetch(port, framework, CASES["stream"]).body == b"".join(
        f"part {i}\n".encode() for i in range(5)
    )
    assert json.loads(fetch(port, framework, CASES["unicode"]).body) == {"word": "café"}
    assert fetch(port, framework, CASES["error"]).status == 500

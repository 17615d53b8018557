"""Issue #14's pipelining case: four requests in one write on one connection, and the answers
read back until EOF (``tests/integration/apps/pipeline.py`` serves them)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

APP = "tests.integration.apps.pipeline:app"

#: A slow request first, then three quick ones; the last closes the connection.
PIPELINE = (
    b"GET /delay/1 HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /get HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n"
    b"GET /bytes/300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
)
#: (status, X-Path, body) of each answer, in the order of the requests.
EXPECTED = [
    (200, "/delay/1", b"delayed 1\n"),
    (200, "/get", b"get\n"),
    (204, "/status/204", b""),
    (200, "/bytes/300", bytes(i % 251 for i in range(300))),
]


@dataclass
class Answer:
    status: int
    path: str
    body: bytes

    def triple(self) -> tuple[int, str, bytes]:
        return self.status, self.path, self.body


def read_until_eof(port: int, raw: bytes, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send ``raw`` in one write; return what came back and whether the peer closed (False:
    ``timeout`` seconds passed first)."""
    data = b""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return data, False
            if not chunk:
                return data, True
            data += chunk
    return data, False


def parse_answers(data: bytes) -> tuple[list[Answer], bytes]:
    """The complete HTTP/1.1 answers (Content-Length bodies; none for 204) in ``data``, and
    what is left after them (an incomplete answer)."""
    answers: list[Answer] = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        length = 0 if status in (204, 304) else int(headers.get("content-length", "0"))
        if len(rest) < length:
            break
        answers.append(Answer(status, headers.get("x-path", ""), rest[:length]))
        data = rest[length:]
    return answers, data


def pipelined_exchange(port: int) -> tuple[list[tuple[int, str, bytes]], bytes, bool]:
    """Issue #14's four pipelined requests: (the answers in arrival order, leftover bytes,
    whether the connection then closed)."""
    data, closed = read_until_eof(port, PIPELINE)
    answers, left = parse_answers(data)
    return [answer.triple() for answer in answers], left, closed

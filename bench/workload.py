"""The four workloads: which WSGI app each serves, the request wrk sends, and a correct answer.

hello, io and post use the project's own ``handlers/`` apps; big (256 KiB) is ``bench/apps/big``.
In a checkout they are the packages ``handlers`` and ``bench``; installed, ``m2bridge.handlers``
and ``m2bridge.bench``.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

IO_SECONDS = 0.010
POST_BODY_SIZE = 100 * 1024
BIG_SIZE = 256 * 1024
HELLO_BODY = b"Hello, world!\n"
#: This benchmark's package: ``bench`` (``python -m bench``), or ``m2bridge.bench`` (installed,
#: or through an editable install's mapping of the checkout).
PACKAGE = __name__.rpartition(".")[0]
#: The ready-to-run apps' package beside it.
HANDLERS = "handlers" if PACKAGE == "bench" else "m2bridge.handlers"
#: Whether this file is the repository's ``bench/`` (beside pyproject.toml), not an installed copy.
CHECKOUT = (Path(__file__).resolve().parents[1] / "pyproject.toml").is_file()


@dataclass(frozen=True)
class Workload:
    """One app under test and the request that loads it."""

    name: str
    app: str
    path: str = "/"
    method: str = "GET"
    body_size: int = 0
    content_type: str = ""

    def body(self) -> bytes:
        """The request body wrk sends (``x`` repeated)."""
        return b"x" * self.body_size


WORKLOADS = {
    "hello": Workload("hello", f"{HANDLERS}.hello:app"),
    "io": Workload("io", f"{HANDLERS}.sleepy:app", path=f"/?seconds={IO_SECONDS}"),
    "big": Workload("big", f"{PACKAGE}.apps.big:app"),
    "post": Workload(
        "post",
        f"{HANDLERS}.upload:app",
        method="POST",
        body_size=POST_BODY_SIZE,
        content_type="application/octet-stream",
    ),
}


def answer_problem(name: str, status: int, body: bytes) -> str | None:
    """Why ``status``/``body`` is not a correct answer for workload ``name`` (None if it is)."""
    if status != 200:
        return f"status {status}"
    if name == "hello" and body != HELLO_BODY:
        return f"body {body[:40]!r}"
    if name == "big" and len(body) != BIG_SIZE:
        return f"{len(body)} bytes instead of {BIG_SIZE}"
    if name == "io" and not body.startswith(b"slept"):
        return f"body {body[:40]!r}"
    if name == "post":
        try:
            size = json.loads(body)["size"]
        except (ValueError, KeyError, TypeError):
            return f"body {body[:40]!r}"
        if size != POST_BODY_SIZE:
            return f"server read {size} bytes instead of {POST_BODY_SIZE}"
    return None


def canned_body(name: str) -> bytes:
    """What the do-nothing handler answers for workload ``name`` (passes ``answer_problem``)."""
    if name == "post":
        doc = {"size": POST_BODY_SIZE, "sha256": "", "content_length": str(POST_BODY_SIZE)}
        return json.dumps(doc).encode()
    if name == "big":
        return bytes(range(256)) * (BIG_SIZE // 256)
    if name == "io":
        return b"slept 0.0\n"
    return HELLO_BODY

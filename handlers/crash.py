"""Fails on purpose, where the path says: the worker must answer 500 (or close) and survive.

- ``.../iter``: the response iterator raises after its first chunk (headers already sent);
- ``.../close``: the response's ``close()`` raises after a complete body;
- anything else: the application raises before calling ``start_response``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from m2bridge._types import Environ, StartResponse


class CrashError(Exception):
    """The error this app raises."""


class _FailingClose:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        raise CrashError("crash in close()")


def _failing_iterator() -> Iterator[bytes]:
    yield b"first chunk\n"
    raise CrashError("crash inside the response iterator")


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Raise where the path asks."""
    path = environ.get("PATH_INFO", "")
    if path.endswith("/iter"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _failing_iterator()
    if path.endswith("/close"):
        body = b"complete body\n"
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return _FailingClose(body)
    raise CrashError("crash inside the application")

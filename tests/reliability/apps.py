"""WSGI apps that misbehave on purpose, run by the reliability tests' workers.

Workers import them as ``tests.reliability.apps:<name>`` (the stack sets ``PYTHONPATH``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from m2bridge._types import Environ, StartResponse

#: Bytes each request of ``leaky`` keeps for ever.
LEAK_PER_REQUEST = 256 * 1024
_leaked: list[bytes] = []


def _answer(start_response: StartResponse, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def leaky(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Leaks ``LEAK_PER_REQUEST`` bytes per request (touched, so they count in the RSS)."""
    _leaked.append(os.urandom(16) * (LEAK_PER_REQUEST // 16))
    return _answer(start_response, f"pid {os.getpid()}\n".encode())


def no_start_response(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Returns a body without ever calling ``start_response``."""
    return [b"no status"]


def start_response_twice(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Calls ``start_response`` a second time without ``exc_info`` (a PEP 3333 error)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"twice"]


def returns_str(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Returns a str body instead of bytes."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return "a str, not bytes"  # type: ignore[return-value]


class _RaisingClose:
    def __iter__(self) -> Iterator[bytes]:
        yield b"body then a failing close\n"

    def close(self) -> None:
        raise RuntimeError("close() failed on purpose")


def raises_in_close(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answers, then raises in the iterable's ``close()``."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _RaisingClose()


def hangs(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Never answers (a cooperative sleep of an hour)."""
    import gevent

    gevent.sleep(3600)
    return _answer(start_response, b"too late\n")


def router(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``/<name>`` runs the app of that name in this module; ``/`` answers ``ok``."""
    name = environ.get("PATH_INFO", "/").strip("/")
    app = ROUTES.get(name)
    if app is None:
        return _answer(start_response, b"ok\n")
    return app(environ, start_response)


ROUTES = {
    "no_start_response": no_start_response,
    "start_response_twice": start_response_twice,
    "returns_str": returns_str,
    "raises_in_close": raises_in_close,
    "hangs": hangs,
    "leaky": leaky,
}

"""One app for one worker per test module: routes ``/<name>/...`` to ``handlers.<name>``.

``/echo``, ``/stream``, ``/upload``, ``/sleepy``, ``/crash``, ``/hello``, and ``/big?bytes=N``
(one body of N bytes with a Content-Length); SCRIPT_NAME and PATH_INFO are shifted as a mount
would do, so ``handlers.crash`` still sees ``.../iter``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs

from handlers import crash, echo, hello, sleepy, stream, upload
from m2bridge._types import Environ, StartResponse, WSGIApp

MAX_BIG = 64 << 20


def big(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """A body of ``bytes`` bytes (a repeating pattern), sent as one piece."""
    size = min(int(parse_qs(environ.get("QUERY_STRING", "")).get("bytes", ["0"])[0]), MAX_BIG)
    body = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))],
    )
    return [body]


ROUTES: dict[str, WSGIApp] = {
    "big": big,
    "echo": echo.app,
    "stream": stream.app,
    "upload": upload.app,
    "sleepy": sleepy.app,
    "crash": crash.app,
    "hello": hello.app,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Dispatch on the first path segment; 404 for anything else."""
    path = environ.get("PATH_INFO", "")
    name, _, rest = path.lstrip("/").partition("/")
    target = ROUTES.get(name)
    if target is None:
        body = b"no such app\n"
        start_response(
            "404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
    environ["PATH_INFO"] = "/" + rest if rest or path.endswith("/") else ""
    return target(environ, start_response)

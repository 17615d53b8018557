"""Sleeps (cooperatively) before answering: proves one worker serves many slow requests at once.

Query parameter ``seconds`` (default 1, at most 60).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs

import gevent

from m2bridge._types import Environ, StartResponse

MAX_SECONDS = 60.0


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """``gevent.sleep(seconds)``, then answer ``slept N``."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        seconds = min(max(float(query.get("seconds", ["1"])[0]), 0.0), MAX_SECONDS)
    except ValueError:
        seconds = 1.0
    gevent.sleep(seconds)
    body = f"slept {seconds}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""An I/O-bound WSGI app: waits 10 ms the way a database call would, then answers.

The wait is ``gevent.sleep``: it yields to other greenlets in a gevent server and simply blocks
in a synchronous one (gunicorn sync, uWSGI without an async loop), as a real blocking call would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gevent

WAIT_SECONDS = 0.010
BODY = b"waited 10 ms"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Wait ``WAIT_SECONDS`` cooperatively, then answer with ``BODY``."""
    gevent.sleep(WAIT_SECONDS)
    start_response("200 OK", list(HEADERS))
    return [BODY]

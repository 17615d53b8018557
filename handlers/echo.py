"""The oracle app: returns the request's environ (its JSON-safe part) and body as JSON.

Response: ``{"environ": {...}, "body": "<body bytes as latin-1 text>"}``. Keys whose values are
not ``str``/``int``/``float``/``bool`` (or tuples of them, like ``wsgi.version``) are left out,
so ``wsgi.input``, ``wsgi.errors`` and ``m2bridge.disconnected`` never appear.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from m2bridge._types import Environ, StartResponse

_SCALARS = (str, int, float, bool)


def _safe(value: object) -> bool:
    if isinstance(value, tuple):
        return all(isinstance(item, _SCALARS) for item in value)
    return isinstance(value, _SCALARS)


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Echo the environ and the body back as JSON."""
    length = environ.get("CONTENT_LENGTH") or "0"
    body = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
    document = {
        "environ": {key: value for key, value in environ.items() if _safe(value)},
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(document, sort_keys=True).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]

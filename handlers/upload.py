"""Reads the whole request body and answers its size and SHA-256 (the upload oracle)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from m2bridge._types import Environ, StartResponse

BLOCK = 65536


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answer ``{"size": N, "sha256": HEX, "content_length": CONTENT_LENGTH}``."""
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    while block := stream.read(BLOCK):
        digest.update(block)
        size += len(block)
    document = {
        "size": size,
        "sha256": digest.hexdigest(),
        "content_length": environ.get("CONTENT_LENGTH", ""),
    }
    payload = json.dumps(document).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    )
    return [payload]

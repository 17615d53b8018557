"""A streamed response of unknown length (no Content-Length): exercises chunking and merging.

Query parameters: ``chunks`` (default 10), ``size`` (bytes per chunk, default: just the chunk
number and a newline), ``delay`` (seconds to sleep between chunks, default 0). Chunk ``i`` is
``f"{i}\\n"``, left-padded with ``.`` to ``size`` bytes, so a client can check order and count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs

from m2bridge._types import Environ, StartResponse

MAX_CHUNKS = 1_000_000
MAX_SIZE = 1 << 20


def chunk(index: int, size: int = 0) -> bytes:
    """The bytes of chunk ``index`` (the test oracle uses the same function)."""
    return f"{index}\n".encode().rjust(size, b".")


def _number(query: dict[str, list[str]], name: str, default: float, limit: float) -> float:
    try:
        value = float(query.get(name, [str(default)])[0])
    except ValueError:
        return default
    return min(max(value, 0.0), limit)


def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """Yield the chunks one by one."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    chunks = int(_number(query, "chunks", 10, MAX_CHUNKS))
    size = int(_number(query, "size", 0, MAX_SIZE))
    delay = _number(query, "delay", 0.0, 10.0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    for index in range(chunks):
        if delay and index:
            time.sleep(delay)
        yield chunk(index, size)

"""Micro-benchmarks of the sans-IO protocol: parse_message on corpus messages, encode_reply.

No sockets, no processes: ``timeit`` on real Mongrel2 messages from ``tests/data/requests``,
best of several repeats, printed as microseconds per call. Run::

    python -m bench.micro               # all cases
    python -m bench.micro --number 2000 # fewer loops per repeat (quicker, noisier)
"""

from __future__ import annotations

import argparse
import functools
import timeit
from collections.abc import Callable
from pathlib import Path

from m2bridge.wire.encode import encode_reply
from m2bridge.wire.protocol import parse_message

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "requests"
SENDER = b"54c6755b-9628-40a4-9a2d-cc82a816345e"
PARSE_CASES = ("get_query", "headers_repeated", "post_form", "upload_start", "disconnect")
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nHello world\n"


def cases() -> dict[str, Callable[[], object]]:
    """Every benchmark by name, each a zero-argument callable."""
    table: dict[str, Callable[[], object]] = {}
    for name in PARSE_CASES:
        for suffix in ("tnet", "json"):
            raw = (CORPUS / f"{name}.{suffix}").read_bytes()
            table[f"parse {name}.{suffix} ({len(raw)} B)"] = functools.partial(parse_message, raw)
    table["encode_reply 1 id"] = lambda: encode_reply(SENDER, [42], RESPONSE)
    ids = list(range(1000, 1128))
    table["encode_reply 128 ids"] = lambda: encode_reply(SENDER, ids, RESPONSE)
    return table


def measure(func: Callable[[], object], number: int, repeat: int) -> float:
    """Best time of ``repeat`` runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="m2bridge protocol micro-benchmarks")
    parser.add_argument("--number", type=int, default=20000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=5, help="repeats (best is kept)")
    args = parser.parse_args(argv)
    for name, func in cases().items():
        print(f"{name:<42} {measure(func, args.number, args.repeat):8.2f} us/call")


if __name__ == "__main__":
    main()

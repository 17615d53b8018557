"""Mongrel2 messages for property tests: the captured corpus, and hypothesis mutations of it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parents[1] / "data" / "requests"
#: Every captured message (tnetstring and JSON headers), as bytes.
MESSAGES = [
    p.read_bytes()
    for p in sorted([*CORPUS.glob("*.tnet"), *CORPUS.glob("*.json")])
    if ".expected" not in p.suffixes
]
LENGTH_RE = re.compile(rb"[0-9]+:")
TOKENS = [b" ", b":", b",", b"}", b"]", b"#", b"!", b"~", b"^", b"0", b"9", b"\\u", b"\\", b'"']
TOKENS += [b"\xff", b"\x00", b"{", b"[", b"@*", b"JSON", b"-", b"\\ud800", b"\\u0100"]

Mutator = Callable[[st.DrawFn, bytearray], bytearray]


def _flip(draw: st.DrawFn, data: bytearray) -> bytearray:
    index = draw(st.integers(0, max(len(data) - 1, 0)))
    if data:
        data[index] ^= 1 << draw(st.integers(0, 7))
    return data


def _truncate(draw: st.DrawFn, data: bytearray) -> bytearray:
    return data[: draw(st.integers(0, len(data)))]


def _insert(draw: st.DrawFn, data: bytearray) -> bytearray:
    index = draw(st.integers(0, len(data)))
    piece = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
    return data[:index] + piece + data[index:]


def _delete(draw: st.DrawFn, data: bytearray) -> bytearray:
    start = draw(st.integers(0, len(data)))
    return data[:start] + data[start + draw(st.integers(1, 16)) :]


def _relength(draw: st.DrawFn, data: bytearray) -> bytearray:
    spans = [m.span() for m in LENGTH_RE.finditer(data)]
    if not spans:
        return data
    start, end = draw(st.sampled_from(spans))
    old = int(data[start : end - 1])
    new = draw(st.sampled_from([old - 1, old + 1, 0, len(data), 10**12 - 1]) | st.integers(0, 999))
    digits = draw(st.sampled_from([b"%d" % abs(new), b"0%d" % abs(new), b"-%d" % abs(new)]))
    return data[:start] + digits + data[end - 1 :]


MUTATORS: list[Mutator] = [_flip, _truncate, _insert, _delete, _relength]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A captured message with 1 to 4 flips, truncations, insertions, deletions or relengths."""
    data = bytearray(draw(st.sampled_from(MESSAGES)))
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.sampled_from(MUTATORS))(draw, data)
    return bytes(data)

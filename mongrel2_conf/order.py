"""The orders in which m2sh walks hashes, so our rows get the ids m2sh gives them.

m2sh keeps every ``{...}`` of a config (routes, settings, mimetypes) in a ternary search tree
and walks it breadth first (``tst_traverse``), which fixes the order of the rows it inserts.
Filter settings become a tnetstring dict built on a kazlib hash table (64 chains, FNV-1a hash,
new nodes at the head of their chain) and rendered backwards, which fixes the byte order of
``filter.settings``. Both are reproduced here exactly, keys compared as C ``char`` (signed).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_HASH_CHAINS = 64


@dataclass(eq=False)
class _Node:
    split: int
    key: str | None = None
    low: _Node | None = None
    equal: _Node | None = None
    high: _Node | None = None


def _signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


def _chars(key: str) -> list[int]:
    data = key.encode("utf-8")
    return [_signed(b) for b in data] if data else [0]


def _insert(node: _Node | None, chars: list[int], index: int, key: str) -> _Node:
    char = chars[index]
    if node is None:
        node = _Node(char)
    if char < node.split:
        node.low = _insert(node.low, chars, index, key)
    elif char > node.split:
        node.high = _insert(node.high, chars, index, key)
    elif index + 1 < len(chars):
        node.equal = _insert(node.equal, chars, index + 1, key)
    else:
        node.key = key
    return node


def tst_order(keys: Iterable[str]) -> list[str]:
    """``keys`` (inserted in this order) in the order m2sh's ``tst_traverse`` visits them."""
    root: _Node | None = None
    for key in keys:
        root = _insert(root, _chars(key), 0, key)
    ordered: list[str] = []
    queue = deque([root] if root else [])
    while queue:
        node = queue.popleft()
        if node.key is not None:
            ordered.append(node.key)
        queue.extend(child for child in (node.low, node.equal, node.high) if child)
    return ordered


def fnv1a(key: str) -> int:
    """The 32-bit FNV-1a hash mongrel2 uses for strings (``bstr_hash_fun``), up to any NUL."""
    value = _FNV_OFFSET
    for byte in key.encode("utf-8").split(b"\0", 1)[0]:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def tns_dict_order(keys: Iterable[str]) -> list[str]:
    """The order in which mongrel2 renders a tnetstring dict whose keys were added in order.

    Raises:
        ValueError: more keys than the table holds before it grows (m2sh's order would change).
    """
    chains: list[list[str]] = [[] for _ in range(_HASH_CHAINS)]
    count = 0
    for key in keys:
        chains[fnv1a(key) % _HASH_CHAINS].insert(0, key)
        count += 1
    if count >= 2 * _HASH_CHAINS:
        raise ValueError(f"a filter settings hash may hold at most {2 * _HASH_CHAINS - 1} keys")
    scanned = [key for chain in chains for key in chain]
    return scanned[::-1]

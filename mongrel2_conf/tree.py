"""The syntax tree of an m2sh config: every node knows where it starts in the file.

Nodes compare by identity (``eq=False``): one ``Call`` node is one object, however many names
and routes refer to it, which is how m2sh decides that two routes share one target row.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mongrel2_conf.errors import Position


@dataclass(frozen=True, eq=False, slots=True)
class String:
    """A quoted string; ``value`` is the raw text between the quotes (m2sh keeps escapes)."""

    value: str
    pos: Position


@dataclass(frozen=True, eq=False, slots=True)
class Number:
    """An unsigned decimal number; ``text`` keeps leading zeros, as m2sh does."""

    text: str
    pos: Position

    @property
    def value(self) -> int:
        return int(self.text)


@dataclass(frozen=True, eq=False, slots=True)
class Ref:
    """A name that refers to a top-level assignment."""

    name: str
    pos: Position


@dataclass(frozen=True, eq=False, slots=True)
class Param:
    """``name=value`` inside a call; ``pos`` is where the name starts."""

    name: str
    value: Node
    pos: Position


@dataclass(frozen=True, eq=False, slots=True)
class Call:
    """``Class(name=value ...)``: ``cls`` is the class name as written."""

    cls: str
    params: tuple[Param, ...]
    pos: Position

    def param(self, name: str) -> Param | None:
        """The parameter called ``name``, or None."""
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True, eq=False, slots=True)
class ListNode:
    """``[value ...]``."""

    items: tuple[Node, ...]
    pos: Position


@dataclass(frozen=True, eq=False, slots=True)
class Pair:
    """``"key": value`` inside a hash; ``pos`` is where the key starts."""

    key: str
    value: Node
    pos: Position


@dataclass(frozen=True, eq=False, slots=True)
class Hash:
    """``{"key": value ...}``, pairs in file order."""

    pairs: tuple[Pair, ...]
    pos: Position


@dataclass(frozen=True, eq=False, slots=True)
class Assignment:
    """``name = value`` at the top level."""

    name: str
    value: Node
    pos: Position


Node = String | Number | Ref | Call | ListNode | Hash


@dataclass(frozen=True, eq=False, slots=True)
class Document:
    """A parsed config file: its top-level assignments in file order."""

    file: str
    assignments: tuple[Assignment, ...]

    def lookup(self, name: str) -> Assignment | None:
        """The assignment of ``name``, or None."""
        return next((a for a in self.assignments if a.name == name), None)


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node inside it, depth first."""
    yield node
    children: tuple[Node, ...] = ()
    if isinstance(node, Call):
        children = tuple(p.value for p in node.params)
    elif isinstance(node, ListNode):
        children = node.items
    elif isinstance(node, Hash):
        children = tuple(p.value for p in node.pairs)
    for child in children:
        yield from walk(child)

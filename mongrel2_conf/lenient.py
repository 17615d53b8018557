"""What m2sh skips and we refuse by default: drop it from a parsed config, with one warning each.

m2sh reads only what the servers use, and only the keywords it knows, so it ignores without a
word an unknown keyword (a typo, or ``matching=`` on a Server) and anything in an assignment
no server uses. It logs an error but goes on at a route whose target is an undefined name or
not a Handler, Dir or Proxy (the route is dropped), and at an undefined name in a server's
``hosts``, ``filters`` or ``xrequests`` list (that list is read up to the name, the server is
still written). ``prune`` removes exactly those, so the strict checks that follow see what
m2sh loads; each removal is a warning ``FILE:LINE:COLUMN: message``.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mongrel2_conf.check import CLASSES, check_node, describe_node, resolve
from mongrel2_conf.tree import (
    Assignment,
    Call,
    Document,
    Hash,
    ListNode,
    Node,
    Pair,
    Param,
    Ref,
    walk,
)

#: A Server's lists that m2sh walks item by item, stopping at an undefined name.
SERVER_LISTS = ("hosts", "filters", "xrequests")
#: The top-level names m2sh reads; everything else is read only when they refer to it.
ROOTS = ("servers", "settings", "mimetypes")
TARGETS = ("Handler", "Dir", "Proxy")


def prune(document: Document) -> tuple[Document, list[str]]:
    """``document`` without what m2sh ignores, and a located warning for each thing dropped."""
    pruner = _Pruner(document, *_special_nodes(document))
    rebuilt = {a.name: pruner.assignment(a) for a in document.assignments}
    used = _used_names(Document(document.file, tuple(a for a, _ in rebuilt.values())))
    kept: list[Assignment] = []
    warnings: list[str] = []
    for original in document.assignments:
        assignment, found = rebuilt[original.name]
        if original.name in used:
            kept.append(assignment)
            warnings += found
            continue
        problems = check_node(document, original.value)
        if problems:
            warnings.append(
                f"{original.pos}: ignored {original.name!r}, which no server uses (m2sh never "
                f"reads it): {problems[0].message}"
            )
    return Document(document.file, tuple(kept)), warnings


def _special_nodes(document: Document) -> tuple[dict[int, str], set[int]]:
    """The lists m2sh reads as a server's lists (id: which), and the hashes it reads as routes."""
    lists: dict[int, str] = {}
    routes: set[int] = set()
    for assignment in document.assignments:
        for node in walk(assignment.value):
            if not isinstance(node, Call):
                continue
            for param in node.params:
                value = resolve(document, param.value)
                if node.cls == "Server" and param.name in SERVER_LISTS:
                    lists[id(value)] = param.name
                elif node.cls == "Host" and param.name == "routes":
                    routes.add(id(value))
    return lists, routes


def _used_names(document: Document) -> set[str]:
    """The names m2sh reads: the roots, and every name they refer to, at any depth."""
    used: set[str] = set()
    todo = [name for name in ROOTS if document.lookup(name) is not None]
    while todo:
        name = todo.pop()
        assignment = document.lookup(name)
        if name in used or assignment is None:
            continue
        used.add(name)
        todo += [ref.name for ref in _refs(assignment.value)]
    return used


def _refs(node: Node) -> Iterator[Ref]:
    return (child for child in walk(node) if isinstance(child, Ref))


@dataclass
class _Pruner:
    document: Document
    server_lists: dict[int, str]
    route_hashes: set[int]
    warnings: list[str] = field(default_factory=list)

    def warn(self, node: Node | Param | Pair, message: str) -> None:
        self.warnings.append(f"{node.pos}: {message}")

    def assignment(self, assignment: Assignment) -> tuple[Assignment, list[str]]:
        """``assignment`` pruned, and the warnings of what was dropped from it."""
        self.warnings = []
        value = self.node(assignment.value)
        return Assignment(assignment.name, value, assignment.pos), self.warnings

    def node(self, node: Node) -> Node:
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, ListNode):
            which = self.server_lists.get(id(node))
            items = node.items if which is None else self.server_list(node, which)
            return ListNode(tuple(self.node(item) for item in items), node.pos)
        if isinstance(node, Hash):
            kept = self.routes(node) if id(node) in self.route_hashes else node.pairs
            return Hash(tuple(Pair(p.key, self.node(p.value), p.pos) for p in kept), node.pos)
        return node

    def call(self, call: Call) -> Call:
        known = CLASSES.get(call.cls)
        params = []
        for param in call.params:
            if known is not None and param.name not in known:
                self.warn(param, f"ignored unknown keyword {param.name!r} for {call.cls}")
                continue
            params.append(Param(param.name, self.node(param.value), param.pos))
        return Call(call.cls, tuple(params), call.pos)

    def server_list(self, items: ListNode, which: str) -> tuple[Node, ...]:
        for index, item in enumerate(items.items):
            if isinstance(item, Ref) and self.document.lookup(item.name) is None:
                dropped = len(items.items) - index
                self.warn(
                    item,
                    f"ignored undefined name {item.name!r} in a Server's {which}: m2sh stops "
                    f"reading the list there ({dropped} item{'s'[: dropped - 1]} dropped)",
                )
                return items.items[:index]
        return items.items

    def routes(self, routes: Hash) -> list[Pair]:
        kept = []
        for pair in routes.pairs:
            target = resolve(self.document, pair.value)
            if target is None:
                assert isinstance(pair.value, Ref)
                found = f"undefined name {pair.value.name!r}"
            elif not isinstance(target, Call) or target.cls not in TARGETS:
                found = f"{describe_node(target)} is not a Handler, Dir or Proxy"
            else:
                kept.append(pair)
                continue
            self.warn(pair.value, f"ignored route {pair.key!r}: {found} (m2sh drops the route)")
        return kept

"""Turn a parsed config (``tree.Document``) into model objects, the way m2sh reads it.

First ``check.check_document`` checks the whole file; then the objects reachable from
``servers`` are built. One ``Class(...)`` in the file becomes one model object, however many
names and routes refer to it, so it becomes one row. Every problem is collected, each with its
file:line:column, before ``ConfigError`` is raised.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from mongrel2_conf.check import check_document, describe_node, resolve
from mongrel2_conf.errors import ConfigError, Position
from mongrel2_conf.model import (
    Config,
    Dir,
    Filter,
    FilterValue,
    Handler,
    Host,
    Proxy,
    Server,
    SettingValue,
    Target,
    Xrequest,
)
from mongrel2_conf.tree import Call, Document, Hash, ListNode, Node, Number, Ref, String

T = TypeVar("T")
P = TypeVar("P", Filter, Xrequest)
TARGETS = ("Handler", "Dir", "Proxy")


class _Invalid(Exception):
    """Internal: a problem is recorded; stop building this object."""


@dataclass
class Built:
    """A built config, the model object each top-level name stands for, and its warnings."""

    config: Config
    names: dict[str, object]
    warnings: list[str] = field(default_factory=list)


def build_config(document: Document) -> Built:
    """Check ``document`` and build its Config.

    Raises:
        ConfigError: every problem found (in ``problems``), the first one's position on top.
    """
    problems = check_document(document)
    if problems:
        raise ConfigError.collect(problems)
    builder = _Builder(document)
    config = builder.config()
    if builder.problems or config is None:
        raise ConfigError.collect(builder.problems)
    return Built(config, builder.names())


class _Builder:
    def __init__(self, document: Document) -> None:
        self.document = document
        self.problems: list[ConfigError] = []
        self.memo: dict[int, object] = {}

    def fail(self, message: str, pos: Position) -> _Invalid:
        self.problems.append(ConfigError(message, pos))
        return _Invalid()

    def resolved(self, node: Node) -> Node:
        value = resolve(self.document, node)
        assert value is not None, "check_document reports undefined names"
        assert not isinstance(value, Ref), "check_document reports names of names"
        return value

    def config(self) -> Config | None:
        servers = self.servers()
        settings, settings_at = self.scalars("settings", numbers=True)
        mimetypes, mimetypes_at = self.scalars("mimetypes", numbers=False)
        if self.problems:
            return None
        mimes = {key: str(value) for key, value in mimetypes.items()}
        origin = {**settings_at, **mimetypes_at}
        return Config(servers=servers, settings=settings, mimetypes=mimes, origin=origin)

    def names(self) -> dict[str, object]:
        assignments = self.document.assignments
        return {a.name: self.memo[id(a.value)] for a in assignments if id(a.value) in self.memo}

    def servers(self) -> list[Server]:
        assignment = self.document.lookup("servers")
        if assignment is None:
            first = self.document.assignments[0].pos
            self.fail("no 'servers' list: add servers = [main], naming your Server(...)", first)
            return []
        if not isinstance(assignment.value, ListNode):
            message = "'servers' must be a list written in place: servers = [...]"
            self.fail(message, assignment.value.pos)
            return []
        return self.objects(assignment.value, "Server", self.server)

    def objects(self, node: Node, cls: str, make: Callable[[Call], T]) -> list[T]:
        built: list[T] = []
        items = self.resolved(node)
        assert isinstance(items, ListNode)
        for item in items.items:
            call = self.resolved(item)
            if not isinstance(call, Call) or call.cls != cls:
                self.fail(f"expected a {cls}(...) here, found {describe_node(call)}", item.pos)
                continue
            with contextlib.suppress(_Invalid):
                built.append(self.once(call, make))
        return built

    def once(self, call: Call, make: Callable[[Call], T]) -> T:
        if id(call) not in self.memo:
            self.memo[id(call)] = make(call)
        made: T = self.memo[id(call)]  # type: ignore[assignment]
        return made

    def params(self, call: Call) -> dict[str, Node]:
        return {p.name: self.resolved(p.value) for p in call.params}

    def server(self, call: Call) -> Server:
        p = self.params(call)
        return Server(
            uuid=_text(p["uuid"]),
            access_log=_text(p["access_log"]),
            error_log=_text(p["error_log"]),
            pid_file=_text(p["pid_file"]),
            default_host=_text(p["default_host"]),
            name=_text(p["name"]),
            port=_number(p["port"]),
            hosts=self.objects(p["hosts"], "Host", self.host),
            chroot=_text(p.get("chroot"), ""),
            control_port=_text(p.get("control_port"), ""),
            bind_addr=_text(p.get("bind_addr"), "0.0.0.0"),
            use_ssl=_number(p.get("use_ssl"), 0),
            filters=self.plugins(p.get("filters"), "Filter", Filter),
            xrequests=self.plugins(p.get("xrequests"), "Xrequest", Xrequest),
            origin=_origin(call),
        )

    def host(self, call: Call) -> Host:
        p = self.params(call)
        routes = p["routes"]
        assert isinstance(routes, Hash)
        targets: dict[str, Target] = {}
        for pair in routes.pairs:
            value = self.resolved(pair.value)
            if not isinstance(value, Call) or value.cls not in TARGETS:
                found = describe_node(value)
                message = f"route {pair.key!r} must point at Handler, Dir or Proxy, not {found}"
                self.fail(message, pair.value.pos)
                continue
            targets[pair.key] = self.once(value, self.target)
        matching = _text(p["matching"]) if "matching" in p else None
        return Host(name=_text(p["name"]), routes=targets, matching=matching, origin=_origin(call))

    def target(self, call: Call) -> Target:
        p = self.params(call)
        if call.cls == "Handler":
            return Handler(
                send_spec=_text(p["send_spec"]),
                send_ident=_text(p["send_ident"]),
                recv_spec=_text(p["recv_spec"]),
                recv_ident=_text(p["recv_ident"]),
                raw_payload=self.raw_payload(p.get("raw_payload")),
                protocol=_text(p.get("protocol"), "json"),
                origin=_origin(call),
            )
        if call.cls == "Dir":
            return Dir(
                base=_text(p["base"]),
                index_file=_text(p["index_file"]),
                default_ctype=_text(p["default_ctype"]),
                cache_ttl=_cache_ttl(p.get("cache_ttl")),
                origin=_origin(call),
            )
        return Proxy(addr=_text(p["addr"]), port=_number(p["port"]), origin=_origin(call))

    def raw_payload(self, node: Node | None) -> int:
        if node is None:
            return 0
        assert isinstance(node, Number)
        if node.text not in ("0", "1"):
            raise self.fail(f"Handler raw_payload must be 0 or 1, not {node.text}", node.pos)
        return int(node.text)

    def plugins(self, node: Node | None, cls: str, kind: type[P]) -> list[P]:
        if node is None:
            return []

        def make(call: Call) -> P:
            p = self.params(call)
            settings = self.filter_value(p["settings"], 0)
            assert isinstance(settings, dict)
            return kind(name=_text(p["name"]), settings=settings, origin=_origin(call))

        return self.objects(node, cls, make)

    def filter_value(self, written: Node, depth: int) -> FilterValue:
        """A filter setting; names are followed at any depth (m2sh does so here)."""
        if depth > 32:
            message = "filter settings nest too deep (a name that refers to itself?)"
            raise self.fail(message, written.pos)
        node = self.resolved(written)
        if isinstance(node, String):
            return node.value
        if isinstance(node, Number):  # the lexer keeps numbers within a signed 64-bit long
            return node.value
        if isinstance(node, ListNode):
            return [self.filter_value(item, depth + 1) for item in node.items]
        if isinstance(node, Hash):
            return {p.key: self.filter_value(p.value, depth + 1) for p in node.pairs}
        raise self.fail(f"filter settings cannot hold {describe_node(node)}", written.pos)

    def scalars(
        self, name: str, numbers: bool
    ) -> tuple[dict[str, SettingValue], dict[str, Position]]:
        assignment = self.document.lookup(name)
        if assignment is None:
            return {}, {}
        node = self.resolved(assignment.value)
        if not isinstance(node, Hash):
            self.fail(f'{name!r} must be a hash {{"key": value ...}}', assignment.value.pos)
            return {}, {}
        values: dict[str, SettingValue] = {}
        where: dict[str, Position] = {}
        for pair in node.pairs:
            value = self.resolved(pair.value)
            where[f"{name}:{pair.key}"] = pair.value.pos
            if isinstance(value, String):
                values[pair.key] = value.value
            elif isinstance(value, Number) and numbers:
                values[pair.key] = value.value if str(value.value) == value.text else value.text
            else:
                kinds = "a string or a number" if numbers else "a string"
                message = (
                    f"{name} value for {pair.key!r} must be {kinds}, not {describe_node(value)}"
                )
                self.fail(message, pair.value.pos)
        return values, where


def _origin(call: Call) -> dict[str, Position]:
    return {"": call.pos, **{p.name: p.value.pos for p in call.params}}


def _text(node: Node | None, default: str | None = None) -> str:
    if node is None:
        assert default is not None
        return default
    assert isinstance(node, String)
    return node.value


def _number(node: Node | None, default: int | None = None) -> int:
    if node is None:
        assert default is not None
        return default
    assert isinstance(node, Number)
    return node.value


def _cache_ttl(node: Node | None) -> int:
    """m2sh stores cache_ttl only when its text does not start with '0' (``05`` stays 0)."""
    if node is None:
        return 0
    assert isinstance(node, Number)
    return 0 if node.text.startswith("0") else node.value

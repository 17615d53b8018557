"""Whole-file checks of a parsed config: classes, keywords, required fields, kinds and names.

Every ``Class(...)`` in the file is checked, used or not: its class must be one m2sh knows, its
parameters must be m2sh's, the required ones present, and each value of the right kind. Every
name must be defined, and may not name another name (m2sh resolves one level only).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from enum import Enum

from mongrel2_conf.errors import ConfigError
from mongrel2_conf.tree import Call, Document, Hash, ListNode, Node, Number, Ref, String, walk


class Want(Enum):
    """The kind of value a parameter takes."""

    STR = "a string"
    INT = "a number"
    LIST = "a list [...]"
    HASH = "a hash {...}"


_KIND = {String: Want.STR, Number: Want.INT, ListNode: Want.LIST, Hash: Want.HASH}

#: class -> parameter -> (kind, required): m2sh 1.12's parameters, nothing else.
CLASSES: dict[str, dict[str, tuple[Want, bool]]] = {
    "Server": {
        "uuid": (Want.STR, True),
        "access_log": (Want.STR, True),
        "error_log": (Want.STR, True),
        "pid_file": (Want.STR, True),
        "default_host": (Want.STR, True),
        "name": (Want.STR, True),
        "port": (Want.INT, True),
        "hosts": (Want.LIST, True),
        "chroot": (Want.STR, False),
        "control_port": (Want.STR, False),
        "bind_addr": (Want.STR, False),
        "use_ssl": (Want.INT, False),
        "filters": (Want.LIST, False),
        "xrequests": (Want.LIST, False),
    },
    "Host": {"name": (Want.STR, True), "routes": (Want.HASH, True), "matching": (Want.STR, False)},
    "Handler": {
        "send_spec": (Want.STR, True),
        "send_ident": (Want.STR, True),
        "recv_spec": (Want.STR, True),
        "recv_ident": (Want.STR, True),
        "raw_payload": (Want.INT, False),
        "protocol": (Want.STR, False),
    },
    "Dir": {
        "base": (Want.STR, True),
        "index_file": (Want.STR, True),
        "default_ctype": (Want.STR, True),
        "cache_ttl": (Want.INT, False),
    },
    "Proxy": {"addr": (Want.STR, True), "port": (Want.INT, True)},
    "Filter": {"name": (Want.STR, True), "settings": (Want.HASH, True)},
    "Xrequest": {"name": (Want.STR, True), "settings": (Want.HASH, True)},
}


def describe_node(node: Node) -> str:
    """How a message names a value: ``a string``, ``Dir(...)``, ``name 'x'``."""
    if isinstance(node, Call):
        return f"{node.cls}(...)"
    if isinstance(node, Ref):
        return f"name {node.name!r}"
    return _KIND[type(node)].value


def resolve(document: Document, node: Node) -> Node | None:
    """``node``, or the value of the name it is (one level, like m2sh); None if undefined."""
    if isinstance(node, Ref):
        assignment = document.lookup(node.name)
        return None if assignment is None else assignment.value
    return node


def check_document(document: Document) -> list[ConfigError]:
    """Every class, keyword, required-field, kind and name problem in ``document``."""
    return [
        p for assignment in document.assignments for p in check_node(document, assignment.value)
    ]


def check_node(document: Document, top: Node) -> list[ConfigError]:
    """Every class, keyword, required-field, kind and name problem in ``top`` and below."""
    problems: list[ConfigError] = []
    for node in walk(top):
        if isinstance(node, Ref):
            problems.extend(_check_ref(document, node))
        elif isinstance(node, Call):
            problems.extend(_check_call(document, node))
    return problems


def _check_ref(document: Document, ref: Ref) -> list[ConfigError]:
    target = document.lookup(ref.name)
    if target is None:
        return [ConfigError(f"undefined name {ref.name!r}", ref.pos)]
    if isinstance(target.value, Ref):
        message = (
            f"{ref.name!r} names {target.value.name!r}, another name: m2sh follows one level "
            f"only, so write {target.value.name!r} here"
        )
        return [ConfigError(message, ref.pos)]
    return []


def _check_call(document: Document, call: Call) -> list[ConfigError]:
    spec = CLASSES.get(call.cls)
    if spec is None:
        message = f"unknown class {call.cls!r} (known: {', '.join(CLASSES)})"
        return [ConfigError(message, call.pos)]
    problems = []
    for param in call.params:
        if param.name not in spec:
            known = ", ".join(spec)
            message = f"unknown keyword {param.name!r} for {call.cls} (known: {known})"
            problems.append(ConfigError(message, param.pos))
            continue
        want = spec[param.name][0]
        resolved = resolve(document, param.value)
        if (
            resolved is not None
            and not isinstance(resolved, Ref)
            and _KIND.get(type(resolved)) is not want
        ):
            message = f"{call.cls} {param.name} must be {want.value}, not {describe_node(resolved)}"
            problems.append(ConfigError(message, param.value.pos))
    missing = [
        name for name, (_, required) in spec.items() if required and call.param(name) is None
    ]
    problems.extend(
        ConfigError(f"{call.cls}(...) is missing its required {name!r}", call.pos)
        for name in missing
    )
    return problems

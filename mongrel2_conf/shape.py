"""Checks that objects built in Python have the classes and field types a config needs.

Config files get these guarantees from ``check``; code that builds ``Server(...)``, ``Host(...)``
and friends by hand gets a clear error here instead of a crash while writing. Also how a
problem names the object it is about (``problem_at``).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from mongrel2_conf.errors import ConfigError, Position
from mongrel2_conf.model import Config, Dir, Filter, Handler, Host, Proxy, Server, Xrequest

_STR, _INT = str, int
FIELD_TYPES: dict[type, dict[str, type]] = {
    Server: {
        "uuid": _STR, "access_log": _STR, "error_log": _STR, "pid_file": _STR,
        "default_host": _STR, "name": _STR, "chroot": _STR, "control_port": _STR,
        "bind_addr": _STR, "port": _INT, "use_ssl": _INT,
    },
    Host: {"name": _STR},
    Handler: {
        "send_spec": _STR, "send_ident": _STR, "recv_spec": _STR, "recv_ident": _STR,
        "protocol": _STR, "raw_payload": _INT,
    },
    Dir: {"base": _STR, "index_file": _STR, "default_ctype": _STR, "cache_ttl": _INT},
    Proxy: {"addr": _STR, "port": _INT},
    Filter: {"name": _STR},
    Xrequest: {"name": _STR},
}  # fmt: skip
TARGETS = (Handler, Dir, Proxy)


def check_shape(config: Config) -> list[ConfigError]:
    """Wrong classes in the object tree and wrong field types, each named by its place."""
    problems = []
    for place, obj, expected in _places(config):
        if not isinstance(obj, expected):
            names = " or ".join(kind.__name__ for kind in expected)
            problems.append(ConfigError(f"{place} must be a {names}, not {obj!r}"))
            continue
        problems += _field_problems(obj)
    return problems


def _places(config: Config) -> Iterator[tuple[str, object, tuple[type, ...]]]:
    for server in config.servers:
        yield "each of servers", server, (Server,)
        if not isinstance(server, Server):
            continue
        for host in server.hosts:
            yield f"each host of server {server.name!r}", host, (Host,)
            if isinstance(host, Host):
                yield f"routes of host {host.name!r}", host.routes, (Mapping,)
                if isinstance(host.routes, Mapping):
                    for path, target in host.routes.items():
                        yield f"route {path!r} of host {host.name!r}", target, TARGETS
        yield from ((f"each filter of {server.name!r}", f, (Filter,)) for f in server.filters)
        yield from ((f"each xrequest of {server.name!r}", x, (Xrequest,)) for x in server.xrequests)


def _field_problems(obj: object) -> list[ConfigError]:
    problems = []
    for name, kind in FIELD_TYPES.get(type(obj), {}).items():
        value = getattr(obj, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            message = f"{type(obj).__name__}.{name} must be {kind.__name__}, not {value!r}"
            problems.append(problem_at(message, obj, name))
    return problems


def problem_at(message: str, obj: object, field: str = "") -> ConfigError:
    """A problem of ``obj`` at the position of ``field`` (or of the object) in its file; an
    object built in Python has none, so the message starts with a label naming it."""
    origin: Mapping[str, Position] = getattr(obj, "origin", {})
    position = origin.get(field) or origin.get("")
    if position is None:
        message = f"{label(obj)}: {message}"
    return ConfigError(message, position)


def label(obj: object) -> str:
    """How a message names an object: ``Server 'main'``, ``Handler 'ident'``, ``Dir 'base/'``."""
    if isinstance(obj, Server | Host | Filter | Xrequest):
        return f"{type(obj).__name__} {obj.name!r}"
    if isinstance(obj, Handler):
        return f"Handler {obj.send_ident!r}"
    if isinstance(obj, Dir):
        return f"Dir {obj.base!r}"
    if isinstance(obj, Proxy):
        return f"Proxy {obj.addr!r}"
    return type(obj).__name__

"""Checks on model objects that make a config fit to run: the same for files and Python code.

Object classes and field types (``shape``); duplicate server uuids and host names;
ZeroMQ endpoints, also shared ones; Dir bases; handler protocols; ports and flags in range;
settings values of the kind Mongrel2 reads. Problems carry the file position recorded in
``origin`` when there is one, else a label naming the object.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from mongrel2_conf.errors import ConfigError
from mongrel2_conf.listeners import clashes
from mongrel2_conf.model import Config, Dir, Handler, Proxy, Server
from mongrel2_conf.settings import expected_kind, is_known
from mongrel2_conf.shape import check_shape, problem_at

log = logging.getLogger("mongrel2_conf")

PROTOCOLS = ("json", "tnetstring")
_TCP = re.compile(r"tcp://(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")
_IPC = re.compile(r"ipc://[^\0]+")


def validate(config: Config) -> list[ConfigError]:
    """Every problem of ``config`` (an empty list when it is fit to write)."""
    problems = check_shape(config)
    if problems:
        return problems
    problems += _check_servers(config.servers)
    for server in config.servers:
        problems += _check_server(server)
    problems += _check_targets(config)
    problems += _check_endpoints(config)
    problems += _check_settings(config)
    return problems


def valid_endpoint(spec: str) -> bool:
    """True for ``tcp://HOST:PORT`` (port 1-65535) and ``ipc://PATH``, the specs a handler
    in another process can reach."""
    tcp = _TCP.fullmatch(spec)
    if tcp:
        return 0 < int(tcp.group(2)) < 65536
    return _IPC.fullmatch(spec) is not None


def _check_servers(servers: Sequence[Server]) -> list[ConfigError]:
    problems = []
    uuids: dict[str, Server] = {}
    for server in servers:
        if server.uuid in uuids:
            problems.append(
                problem_at(f"server uuid {server.uuid!r} is used twice", server, "uuid")
            )
        uuids.setdefault(server.uuid, server)
    return problems


def _check_server(server: Server) -> list[ConfigError]:
    problems = []
    if not 0 < server.port < 65536:
        problems.append(
            problem_at(f"port {server.port} is not between 1 and 65535", server, "port")
        )
    if server.use_ssl not in (0, 1):
        problems.append(
            problem_at(f"use_ssl must be 0 or 1, not {server.use_ssl}", server, "use_ssl")
        )
    names: set[str] = set()
    for host in server.hosts:
        if host.name in names:
            message = f"host name {host.name!r} is used twice in server {server.name!r}"
            problems.append(problem_at(message, host, "name"))
        names.add(host.name)
    return problems


def _distinct_targets(config: Config) -> list[object]:
    seen: dict[int, object] = {}
    for server in config.servers:
        for host in server.hosts:
            for target in host.routes.values():
                seen.setdefault(id(target), target)
    return list(seen.values())


def _check_targets(config: Config) -> list[ConfigError]:
    problems = []
    for target in _distinct_targets(config):
        if isinstance(target, Handler):
            problems += _check_handler(target)
        elif isinstance(target, Dir) and not target.base.endswith("/"):
            message = f"Dir base {target.base!r} must end with '/' (Mongrel2 rejects it otherwise)"
            problems.append(problem_at(message, target, "base"))
        elif isinstance(target, Proxy) and not 0 < target.port < 65536:
            message = f"Proxy port {target.port} is not between 1 and 65535"
            problems.append(problem_at(message, target, "port"))
    return problems


def _check_endpoints(config: Config) -> list[ConfigError]:
    """Mongrel2 binds each endpoint once: handlers sharing one must be the same handler."""
    problems = []
    bound: dict[str, tuple[str, Handler]] = {}
    for target in _distinct_targets(config):
        if not isinstance(target, Handler):
            continue
        for role in ("send_spec", "recv_spec"):
            spec = getattr(target, role)
            first_role, first = bound.setdefault(spec, (role, target))
            if first is target or (first_role == role and first == target):
                continue  # the same handler (send_spec == recv_spec is reported elsewhere)
            where = first.origin.get(first_role)
            at = f" at line {where.line}" if where else ""
            message = f"{role} {spec!r} is already the {first_role} of another Handler{at}"
            problems.append(problem_at(message, target, role))
    return problems


def _check_handler(handler: Handler) -> list[ConfigError]:
    problems = []
    for name in ("send_spec", "recv_spec"):
        spec = getattr(handler, name)
        if not valid_endpoint(spec):
            message = (
                f"malformed ZeroMQ endpoint {name}={spec!r}: "
                "expected tcp://HOST:PORT (port 1-65535) or ipc://PATH"
            )
            problems.append(problem_at(message, handler, name))
    if handler.send_spec == handler.recv_spec:
        message = f"send_spec and recv_spec are the same endpoint {handler.send_spec!r}"
        problems.append(problem_at(message, handler, "recv_spec"))
    if handler.protocol not in PROTOCOLS:
        message = f"Handler protocol must be 'json' or 'tnetstring', not {handler.protocol!r}"
        problems.append(problem_at(message, handler, "protocol"))
    if handler.raw_payload not in (0, 1):
        message = f"Handler raw_payload must be 0 or 1, not {handler.raw_payload}"
        problems.append(problem_at(message, handler, "raw_payload"))
    return problems


def _check_settings(config: Config) -> list[ConfigError]:
    problems = []
    for key, value in config.settings.items():
        kind = expected_kind(key, value)
        if kind:
            problems.append(_settingproblem_at(config, "settings", key, kind))
    for key, value in config.mimetypes.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            problems.append(
                _settingproblem_at(config, "mimetypes", key, "a non-empty key and a string value")
            )
    return problems


def _settingproblem_at(config: Config, table: str, key: object, kind: str) -> ConfigError:
    position = config.origin.get(f"{table}:{key}")
    value = getattr(config, table)[key]
    return ConfigError(f"{table} value for {key!r} must be {kind}, not {value!r}", position)


def find_warnings(config: Config) -> list[str]:
    """Things Mongrel2 accepts but that are probably mistakes (never errors)."""
    warnings = []
    for key in config.settings:
        if not is_known(key):
            where = config.origin.get(f"settings:{key}")
            prefix = f"{where}: " if where else ""
            warnings.append(f"{prefix}unknown setting {key!r}: Mongrel2 1.12 ignores it")
    for server in config.servers:
        if server.default_host not in {host.name for host in server.hosts}:
            where = server.origin.get("default_host")
            prefix = f"{where}: " if where else ""
            warnings.append(
                f"{prefix}default_host {server.default_host!r} of server {server.name!r} "
                "is not the name of one of its hosts"
            )
    for first, server in clashes(config.servers):
        where = server.origin.get("port")
        prefix = f"{where}: " if where else ""
        warnings.append(
            f"{prefix}server {server.name!r} listens on port {server.port} like server "
            f"{first.name!r}: Mongrel2 runs one server per process, so they cannot run together"
        )
    return warnings

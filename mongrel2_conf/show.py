"""Describe a config for people (aligned tables) and for scripts (JSON-ready dicts).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mongrel2_conf.model import Config, Dir, Handler, Proxy, Server, Target
from mongrel2_conf.order import tst_order


def handler_numbers(config: Config) -> dict[int, int]:
    """``id(handler) -> n``: the handler's row id, numbered in the order m2sh writes rows."""
    numbers: dict[int, int] = {}
    for server in config.servers:
        for host in server.hosts:
            for path in tst_order(host.routes):
                target = host.routes[path]
                if isinstance(target, Handler):
                    numbers.setdefault(id(target), len(numbers) + 1)
    return numbers


def format_config(config: Config) -> str:
    """Servers, then hosts and routes, then handlers, as aligned text tables."""
    numbers = handler_numbers(config)
    server_rows = [_server_cells(s) for s in config.servers]
    route_rows = [
        [server.name, host.name, host.matching_or_name, path, *_target_cells(target, numbers)]
        for server in config.servers
        for host in server.hosts
        for path, target in host.routes.items()
    ]
    handler_rows = _handler_rows(config, numbers)
    sections = [
        table(["SERVER", "UUID", "LISTEN", "CHROOT", "DEFAULT_HOST", "HOSTS"], server_rows),
        table(["SERVER", "HOST", "MATCHING", "ROUTE", "TYPE", "TARGET"], route_rows),
        table(
            ["HANDLER", "SEND_SPEC", "RECV_SPEC", "SEND_IDENT", "PROTOCOL", "ROUTES"], handler_rows
        ),
    ]
    if config.settings:
        sections.append(
            table(["SETTING", "VALUE"], [[k, str(v)] for k, v in config.settings.items()])
        )
    return "\n\n".join(sections)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; ``(none)`` under the header when empty."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    return "\n".join(lines if rows else [*lines, "(none)"])


def _server_cells(server: Server) -> list[str]:
    listen = f"{server.bind_addr}:{server.port}" + (" ssl" if server.use_ssl else "")
    hosts = ", ".join(host.name for host in server.hosts)
    return [server.name, server.uuid, listen, server.chroot or "''", server.default_host, hosts]


def _target_cells(target: Target, numbers: dict[int, int]) -> list[str]:
    if isinstance(target, Handler):
        return ["handler", f"#{numbers[id(target)]} {target.send_ident}"]
    if isinstance(target, Dir):
        return ["dir", f"{target.base} (index {target.index_file}, {target.default_ctype})"]
    return ["proxy", f"{target.addr}:{target.port}"]


def _handler_list(config: Config, numbers: dict[int, int]) -> list[tuple[int, Handler, list[str]]]:
    """``(number, handler, route paths)`` for each distinct handler, by number."""
    routes: dict[int, list[str]] = {}
    handlers: dict[int, Handler] = {}
    for _, _, path, handler in config.handlers():
        paths = routes.setdefault(id(handler), [])
        if path not in paths:
            paths.append(path)
        handlers[id(handler)] = handler
    ordered = sorted(handlers, key=lambda key: numbers[key])
    return [(numbers[key], handlers[key], routes[key]) for key in ordered]


def _handler_rows(config: Config, numbers: dict[int, int]) -> list[list[str]]:
    return [
        [f"#{n}", h.send_spec, h.recv_spec, h.send_ident, h.protocol, " ".join(paths)]
        for n, h, paths in _handler_list(config, numbers)
    ]


def config_to_json(config: Config) -> dict[str, Any]:
    """A JSON-ready description: servers with hosts, routes and targets; handlers; settings."""
    numbers = handler_numbers(config)
    return {
        "servers": [_server_json(server, numbers) for server in config.servers],
        "handlers": [
            {
                "id": n,
                "send_spec": h.send_spec,
                "recv_spec": h.recv_spec,
                "send_ident": h.send_ident,
                "recv_ident": h.recv_ident,
                "protocol": h.protocol,
                "raw_payload": h.raw_payload,
                "routes": paths,
            }
            for n, h, paths in _handler_list(config, numbers)
        ],
        "settings": dict(config.settings),
        "mimetypes": dict(config.mimetypes),
    }


def _server_json(server: Server, numbers: dict[int, int]) -> dict[str, Any]:
    fields = ("uuid", "name", "bind_addr", "port", "use_ssl", "chroot", "default_host",
              "access_log", "error_log", "pid_file", "control_port")  # fmt: skip
    return {
        **{name: getattr(server, name) for name in fields},
        "hosts": [
            {
                "name": host.name,
                "matching": host.matching_or_name,
                "routes": [_route_json(path, t, numbers) for path, t in host.routes.items()],
            }
            for host in server.hosts
        ],
        "filters": [{"name": f.name, "settings": f.settings} for f in server.filters],
        "xrequests": [{"name": x.name, "settings": x.settings} for x in server.xrequests],
    }


def _route_json(path: str, target: Target, numbers: dict[int, int]) -> dict[str, Any]:
    if isinstance(target, Handler):
        return {"path": path, "type": "handler", "handler": numbers[id(target)],
                "send_ident": target.send_ident}  # fmt: skip
    if isinstance(target, Dir):
        return {"path": path, "type": "dir", "base": target.base, "index_file": target.index_file,
                "default_ctype": target.default_ctype, "cache_ttl": target.cache_ttl}  # fmt: skip
    assert isinstance(target, Proxy)
    return {"path": path, "type": "proxy", "addr": target.addr, "port": target.port}

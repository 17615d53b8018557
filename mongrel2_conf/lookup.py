"""Find, in a config file or database, the settings one handler process needs.

``m2bridge serve --config PATH --handler NAME_OR_ROUTE`` uses this so that the endpoints,
identity, protocol and Mongrel2's chroot are written once, in the Mongrel2 config.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mongrel2_conf.errors import ConfigError
from mongrel2_conf.loading import is_database, load_built
from mongrel2_conf.model import Config, Handler, Host, Server
from mongrel2_conf.reader import read_config

Use = tuple[Server, Host, str, Handler]


@dataclass(frozen=True)
class HandlerSettings:
    """What a handler process needs to serve one Mongrel2 Handler.

    Attributes:
        send_spec: where Mongrel2 PUSHes requests (the handler connects a PULL).
        recv_spec: where Mongrel2 SUBscribes to replies (the handler connects a PUB).
        send_ident: the Handler's send_ident (Mongrel2's PUSH socket identity).
        recv_ident: the Handler's recv_ident ('' when Mongrel2 accepts any sender).
        protocol: 'json' or 'tnetstring', the format of request headers.
        chroot: the server's chroot exactly as configured ('' or relative paths are relative to
            the directory Mongrel2 starts in); upload temp files live under it.
        upload_temp_store: the ``upload.temp_store`` setting, or None.
        routes: every route path of the server that points at this handler, sorted.
        server_uuid: the uuid of the server those routes belong to.
    """

    send_spec: str
    recv_spec: str
    send_ident: str
    recv_ident: str
    protocol: str
    chroot: str
    upload_temp_store: str | None
    routes: tuple[str, ...] = ()
    server_uuid: str = ""


def find_handler(
    path: str | os.PathLike[str], name_or_route: str, server: str | None = None
) -> HandlerSettings:
    """The settings of one Handler in the config file or sqlite database at ``path``.

    Args:
        path: an m2sh config file or a Mongrel2 database (told apart by content, not name).
        name_or_route: a route path (``/app/``), a handler send_ident, or (config files only)
            the name a Handler is assigned to.
        server: a server uuid or name, when several servers use the handler differently.

    Raises:
        ConfigError: the config is invalid, or nothing matches, or more than one handler
            (or one handler under different chroots) does; the message lists the choices.
    """
    where = str(path)
    if is_database(path):
        config, names = read_config(path), {}
    else:
        built = load_built(path)
        config, names = built.config, built.names
    uses = _uses(config, server, where)
    named = names.get(name_or_route)
    matches = [
        use
        for use in uses
        if name_or_route in (use[2], use[3].send_ident) or (named is not None and use[3] is named)
    ]
    if not matches:
        raise ConfigError(f"no handler {name_or_route!r}; {_choices(uses)}", file=where)
    return _settings(config, uses, matches, name_or_route, where)


def _uses(config: Config, server: str | None, where: str) -> list[Use]:
    uses = config.handlers()
    if server is None:
        return uses
    chosen = [use for use in uses if server in (use[0].uuid, use[0].name)]
    if not chosen:
        known = ", ".join(sorted({s.uuid for s in config.servers})) or "none"
        raise ConfigError(f"no server {server!r} with handlers (servers: {known})", file=where)
    return chosen


def _choices(uses: list[Use]) -> str:
    if not uses:
        return "the config has no Handler routes"
    listed = ", ".join(f"{path} (send_ident {handler.send_ident})" for _, _, path, handler in uses)
    return f"handler routes: {listed}"


def _settings(
    config: Config, uses: list[Use], matches: list[Use], wanted: str, where: str
) -> HandlerSettings:
    handlers = {id(use[3]): use[3] for use in matches}
    if len(handlers) > 1:
        raise ConfigError(f"{wanted!r} matches several handlers; {_choices(matches)}", file=where)
    servers = {use[0].uuid: use[0] for use in matches}
    if len({s.chroot for s in servers.values()}) > 1:
        listed = ", ".join(f"{s.uuid} (chroot {s.chroot!r})" for s in servers.values())
        message = f"{wanted!r} is used by servers with different chroots: {listed}; pass a server"
        raise ConfigError(message, file=where)
    handler = matches[0][3]
    server = matches[0][0]
    routes = tuple(sorted({p for s, _, p, h in uses if h is handler and s is server}))
    temp_store = config.settings.get("upload.temp_store")
    return HandlerSettings(
        send_spec=handler.send_spec,
        recv_spec=handler.recv_spec,
        send_ident=handler.send_ident,
        recv_ident=handler.recv_ident,
        protocol=handler.protocol,
        chroot=server.chroot,
        upload_temp_store=None if temp_store is None else str(temp_store),
        routes=routes,
        server_uuid=server.uuid,
    )

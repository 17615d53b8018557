"""The objects of a Mongrel2 config, one frozen dataclass per kind, fields named like SQL columns.

Build them in Python (``Server(...)``, ``Host(...)``, ``Handler(...)`` ...) or get them from a
config file (``load_config``). As in m2sh, one object used in several routes is one row: rows
are shared by identity (``is``), not by equal fields, so two ``Handler(...)`` calls with the same
arguments are two rows, and one ``Handler`` object named in two routes is one row.

``origin`` is not a column: it maps a field name (``""`` for the object itself) to where it was
written in a config file, so errors can name file:line:column. It never takes part in ``==``.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mongrel2_conf.errors import Position

Origin = Mapping[str, Position]
#: A value in Filter/Xrequest settings: rendered as a tnetstring, as m2sh does.
FilterValue = str | int | list["FilterValue"] | Mapping[str, "FilterValue"]
SettingValue = str | int


@dataclass(frozen=True, kw_only=True)
class Handler:
    """A ZeroMQ handler route target (table ``handler``)."""

    send_spec: str
    send_ident: str
    recv_spec: str
    recv_ident: str
    raw_payload: int = 0
    protocol: str = "json"
    origin: Origin = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Dir:
    """A static directory route target (table ``directory``); ``base`` must end with ``/``."""

    base: str
    index_file: str
    default_ctype: str
    cache_ttl: int = 0
    origin: Origin = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Proxy:
    """An HTTP backend route target (table ``proxy``)."""

    addr: str
    port: int
    origin: Origin = field(default_factory=dict, compare=False, repr=False)


Target = Handler | Dir | Proxy


@dataclass(frozen=True, kw_only=True)
class Host:
    """A virtual host (table ``host``) with its routes: path pattern -> target."""

    name: str
    routes: Mapping[str, Target]
    matching: str | None = None
    origin: Origin = field(default_factory=dict, compare=False, repr=False)

    @property
    def matching_or_name(self) -> str:
        """``matching`` as stored: m2sh uses the host name when it is not given."""
        return self.name if self.matching is None else self.matching


@dataclass(frozen=True, kw_only=True)
class Filter:
    """A filter plugin of a server (table ``filter``): a shared library and its settings."""

    name: str
    settings: Mapping[str, FilterValue]
    origin: Origin = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Xrequest:
    """An xrequest plugin of a server (table ``xrequest``), configured like a Filter."""

    name: str
    settings: Mapping[str, FilterValue]
    origin: Origin = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Server:
    """One Mongrel2 server (table ``server``) with its hosts and plugins.

    The defaults are m2sh's: ``chroot=""``, ``bind_addr="0.0.0.0"``, ``use_ssl=0``,
    ``control_port=""``.
    """

    uuid: str
    access_log: str
    error_log: str
    pid_file: str
    default_host: str
    name: str
    port: int
    hosts: Sequence[Host]
    chroot: str = ""
    control_port: str = ""
    bind_addr: str = "0.0.0.0"
    use_ssl: int = 0
    filters: Sequence[Filter] = ()
    xrequests: Sequence[Xrequest] = ()
    origin: Origin = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole config: the servers, the ``settings`` and the extra ``mimetypes``.

    ``origin`` maps ``settings:KEY`` and ``mimetypes:KEY`` to the position of each value.
    """

    servers: Sequence[Server]
    settings: Mapping[str, SettingValue] = field(default_factory=dict)
    mimetypes: Mapping[str, str] = field(default_factory=dict)
    origin: Origin = field(default_factory=dict, compare=False, repr=False)

    def handlers(self) -> list[tuple[Server, Host, str, Handler]]:
        """Every (server, host, route path, handler) in config order."""
        return [
            (server, host, path, target)
            for server in self.servers
            for host in server.hosts
            for path, target in host.routes.items()
            if isinstance(target, Handler)
        ]

"""Read a Mongrel2 sqlite database (written by m2sh or by us) back into model objects.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from typing import TypeVar
from urllib.parse import quote

from mongrel2_conf.errors import ConfigError
from mongrel2_conf.loading import is_database, load_config
from mongrel2_conf.model import Config, Dir, Filter, Handler, Host, Proxy, Server, Target, Xrequest
from mongrel2_conf.tnet import parse_settings
from mongrel2_conf.writer import default_mimetypes

log = logging.getLogger("mongrel2_conf")
P = TypeVar("P", Filter, Xrequest)
_REQUIRED_TABLES = {"server", "host", "route", "handler", "directory", "proxy", "setting"}


def load_any(path: str | os.PathLike[str]) -> Config:
    """A config from an m2sh config file or from a Mongrel2 sqlite database.

    Raises:
        ConfigError: the file cannot be read, or is neither a valid config nor a database.
    """
    return read_config(path) if is_database(path) else load_config(path)


def read_config(path: str | os.PathLike[str]) -> Config:
    """Read the database at ``path`` (written by m2sh or by us) back into model objects.

    Objects have no ``origin``; a target row used by several routes is one object. Extra
    ``mimetypes`` are the rows that differ from m2sh's defaults.

    Raises:
        ConfigError: ``path`` is missing or is not a Mongrel2 config database.
    """
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            return _read(db, str(path))
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read the database: {exc}", file=str(path)) from exc


def _read(db: sqlite3.Connection, path: str) -> Config:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = _REQUIRED_TABLES - tables
    if missing:
        message = f"not a Mongrel2 config database (no table {', '.join(sorted(missing))})"
        raise ConfigError(message, file=path)
    targets = _targets(db)
    servers = [_server(db, row, targets) for row in db.execute(
        "SELECT id, uuid, access_log, error_log, chroot, pid_file, control_port, default_host,"
        " name, bind_addr, port, use_ssl FROM server ORDER BY id"
    ).fetchall()]  # fmt: skip
    settings = {
        str(k): _text(v) for k, v in db.execute("SELECT key, value FROM setting ORDER BY id")
    }
    return Config(servers=servers, settings=settings, mimetypes=_extra_mimetypes(db, tables))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _targets(db: sqlite3.Connection) -> dict[tuple[str, int], Target]:
    targets: dict[tuple[str, int], Target] = {}
    columns = "id, send_spec, send_ident, recv_spec, recv_ident, raw_payload, protocol"
    for row in db.execute(f"SELECT {columns} FROM handler"):
        targets["handler", row[0]] = Handler(
            send_spec=_text(row[1]), send_ident=_text(row[2]), recv_spec=_text(row[3]),
            recv_ident=_text(row[4]), raw_payload=_int(row[5]), protocol=_text(row[6]),
        )  # fmt: skip
    for row in db.execute("SELECT id, base, index_file, default_ctype, cache_ttl FROM directory"):
        targets["dir", row[0]] = Dir(
            base=_text(row[1]), index_file=_text(row[2]), default_ctype=_text(row[3]),
            cache_ttl=_int(row[4]),
        )  # fmt: skip
    for row in db.execute("SELECT id, addr, port FROM proxy"):
        targets["proxy", row[0]] = Proxy(addr=_text(row[1]), port=_int(row[2]))
    return targets


def _server(
    db: sqlite3.Connection, row: tuple[object, ...], targets: dict[tuple[str, int], Target]
) -> Server:
    hosts = [
        _host(db, host_row, targets)
        for host_row in db.execute(
            "SELECT id, name, matching FROM host WHERE server_id = ? ORDER BY id", (row[0],)
        ).fetchall()
    ]
    return Server(
        uuid=_text(row[1]), access_log=_text(row[2]), error_log=_text(row[3]), chroot=_text(row[4]),
        pid_file=_text(row[5]), control_port=_text(row[6]), default_host=_text(row[7]),
        name=_text(row[8]), bind_addr=_text(row[9]), port=_int(row[10]), use_ssl=_int(row[11]),
        hosts=hosts, filters=_plugins(db, "filter", row[0], Filter),
        xrequests=_plugins(db, "xrequest", row[0], Xrequest),
    )  # fmt: skip


def _host(
    db: sqlite3.Connection, row: tuple[object, ...], targets: dict[tuple[str, int], Target]
) -> Host:
    routes: dict[str, Target] = {}
    query = "SELECT path, target_id, target_type FROM route WHERE host_id = ? ORDER BY id"
    for path, target_id, target_type in db.execute(query, (row[0],)):
        target = targets.get((str(target_type), _int(target_id)))
        if target is None:
            log.warning("route %r points at missing %s %s; skipped", path, target_type, target_id)
            continue
        routes[_text(path)] = target
    name = _text(row[1])
    matching = None if row[2] == name else _text(row[2])
    return Host(name=name, routes=routes, matching=matching)


def _plugins(db: sqlite3.Connection, table: str, server_id: object, kind: type[P]) -> list[P]:
    plugins: list[P] = []
    with contextlib.suppress(sqlite3.OperationalError):  # xrequest is missing in old databases
        query = f"SELECT name, settings FROM {table} WHERE server_id = ? ORDER BY id"
        for name, text in db.execute(query, (server_id,)).fetchall():
            try:
                settings = parse_settings(_text(text))
            except ValueError as exc:
                log.warning("%s %r: unreadable settings (%s); read as {}", table, name, exc)
                settings = {}
            plugins.append(
                kind(name=_text(name), settings=settings if isinstance(settings, dict) else {})
            )
    return plugins


def _extra_mimetypes(db: sqlite3.Connection, tables: set[str]) -> dict[str, str]:
    if "mimetype" not in tables:
        return {}
    defaults = {(row[1], row[2]) for row in default_mimetypes()}
    rows = db.execute("SELECT mimetype, extension FROM mimetype ORDER BY id").fetchall()
    return {_text(ext): _text(mime) for mime, ext in rows if (mime, ext) not in defaults}

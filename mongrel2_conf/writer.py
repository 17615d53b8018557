"""Write a config into Mongrel2's sqlite database, the rows ``m2sh load`` would write.

``to_rows`` is pure: config in, rows out, with m2sh's ids (its walk order, one row per target
object, hosts and routes per occurrence, the default mimetypes first). ``write_config`` validates,
then writes the rows in one sqlite transaction into a copy of the old database (so ``log`` and
any other table survive, as they do with m2sh) and renames the copy over the target: when
anything fails, the old database is left exactly as it was.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from urllib.parse import quote

from mongrel2_conf.errors import ConfigError
from mongrel2_conf.model import Config, Dir, Handler, Proxy, Server, SettingValue, Target
from mongrel2_conf.order import tst_order
from mongrel2_conf.schema import COLUMNS, TABLES, statements
from mongrel2_conf.tnet import render_settings
from mongrel2_conf.validate import validate

Row = tuple[object, ...]
Rows = dict[str, list[Row]]
TARGET_TABLE = {
    Handler: ("handler", "handler"),
    Dir: ("directory", "dir"),
    Proxy: ("proxy", "proxy"),
}


@cache
def default_mimetypes() -> tuple[Row, ...]:
    """The 857 ``(id, mimetype, extension)`` rows m2sh 1.12 writes into every database."""
    text = Path(__file__).with_name("mimetypes.tsv").read_text("utf-8")
    rows = (line.split("\t") for line in text.splitlines() if line)
    return tuple((int(row_id), mimetype, ext) for row_id, mimetype, ext in rows)


def to_rows(config: Config) -> Rows:
    """The rows of every table m2sh fills (not ``log``), ids included, in m2sh's order."""
    rows: Rows = {table: [] for table in TABLES if table != "log"}
    target_ids: dict[int, int] = {}
    for server in config.servers:
        _server_rows(server, rows, target_ids)
    for key in tst_order(config.settings):
        _add(rows, "setting", key, _setting_text(config.settings[key]))
    rows["mimetype"] = _mimetype_rows(config.mimetypes)
    return rows


def _add(rows: Rows, table: str, *values: object) -> int:
    row_id = len(rows[table]) + 1
    rows[table].append((row_id, *values))
    return row_id


def _server_rows(server: Server, rows: Rows, target_ids: dict[int, int]) -> None:
    server_id = _add(
        rows, "server", server.uuid, server.access_log, server.error_log, server.chroot,
        server.pid_file, server.control_port, server.default_host, server.name,
        server.bind_addr, server.port, server.use_ssl,
    )  # fmt: skip
    for host in server.hosts:
        host_id = _add(rows, "host", server_id, 0, host.name, host.matching_or_name)
        for path in tst_order(host.routes):
            target = host.routes[path]
            table, target_type = TARGET_TABLE[type(target)]
            if id(target) not in target_ids:
                target_ids[id(target)] = _add(rows, table, *_target_values(target))
            _add(rows, "route", path, 0, host_id, target_ids[id(target)], target_type)
    for plugin in server.filters:
        _add(rows, "filter", server_id, plugin.name, render_settings(plugin.settings))
    for xrequest in server.xrequests:
        _add(rows, "xrequest", server_id, xrequest.name, render_settings(xrequest.settings))


def _target_values(target: Target) -> tuple[object, ...]:
    if isinstance(target, Handler):
        return (
            target.send_spec, target.send_ident, target.recv_spec, target.recv_ident,
            target.raw_payload, target.protocol,
        )  # fmt: skip
    if isinstance(target, Dir):
        return (target.base, target.index_file, target.default_ctype, target.cache_ttl)
    return (target.addr, target.port)


def _setting_text(value: SettingValue) -> str:
    return value if isinstance(value, str) else str(value)


def _mimetype_rows(extra: Mapping[str, str]) -> list[Row]:
    """The defaults; each extra extension replaces its default row by a new row at the end.

    m2sh 1.12 only deletes the default row (its INSERT is a second statement it never runs);
    we also insert the row, which is what the ``mimetypes`` hash asks for.
    """
    rows = list(default_mimetypes())
    for ext in tst_order(extra):
        rows = [row for row in rows if row[2] != ext]
        rows.append((max((int(str(r[0])) for r in rows), default=0) + 1, extra[ext], ext))
    return rows


def write_config(
    path: str | os.PathLike[str],
    config: Config | Sequence[Server],
    *,
    settings: Mapping[str, SettingValue] | None = None,
    mimetypes: Mapping[str, str] | None = None,
    how: str = "mongrel2_conf",
) -> Rows:
    """Validate ``config`` and write it into the sqlite database at ``path``, atomically.

    Args:
        path: the database; created if missing, replaced as a whole otherwise.
        config: a Config, or just its servers (then ``settings``/``mimetypes`` complete it).
        settings: Mongrel2 settings, when ``config`` is a list of servers.
        mimetypes: extra ``{".ext": "type/subtype"}`` rows, when ``config`` is a list of servers.
        how: the ``log.how`` column (m2sh writes the config file name).

    Returns:
        The rows written (as ``to_rows``), without the ``log`` row.

    Raises:
        ConfigError: the config is invalid, or the database cannot be read or written. The
            old database is then unchanged.
    """
    if not isinstance(config, Config):
        config = Config(servers=list(config), settings=settings or {}, mimetypes=mimetypes or {})
    problems = validate(config)
    if problems:
        raise ConfigError.collect(problems)
    rows = to_rows(config)
    _replace_database(Path(path), rows, log_row(how))
    return rows


def log_row(how: str) -> tuple[str, str, str, str, str]:
    """The ``(who, what, location, how, why)`` of the ``log`` row m2sh adds on each load."""
    try:
        who = os.getlogin()
    except OSError:
        who = os.environ.get("LOGNAME") or _fallback_user()
    return (who, "load", os.uname().nodename, how, "command")


def _fallback_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _replace_database(target: Path, rows: Rows, log: tuple[str, ...]) -> None:
    if target.is_dir():
        raise ConfigError("a directory, not a database file", file=str(target))
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write the database: {exc.strerror}", file=str(target)) from exc
    os.close(fd)
    temp = Path(name)
    try:
        if target.exists():
            _copy_database(target, temp)
        _fill(temp, rows, log)
        os.chmod(temp, _file_mode(target))
        os.replace(temp, target)
    except OSError as exc:
        raise ConfigError(f"cannot replace the database: {exc.strerror}", file=str(target)) from exc
    finally:
        temp.unlink(missing_ok=True)
        Path(f"{temp}-journal").unlink(missing_ok=True)


def _copy_database(source: Path, temp: Path) -> None:
    uri = f"file:{quote(str(source.absolute()))}?mode=ro"
    try:
        with (
            contextlib.closing(sqlite3.connect(uri, uri=True)) as src,
            contextlib.closing(sqlite3.connect(temp)) as dst,
        ):
            src.backup(dst)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read the old database: {exc}", file=str(source)) from exc


def _fill(temp: Path, rows: Rows, log: tuple[str, ...]) -> None:
    try:
        with contextlib.closing(sqlite3.connect(temp, isolation_level=None)) as db:
            db.execute("BEGIN")
            for statement in statements():
                db.execute(statement)
            for table, table_rows in rows.items():
                marks = ", ".join("?" * len(COLUMNS[table]))
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", table_rows)
            db.execute(
                "INSERT INTO log (who, what, location, how, why) VALUES (?, ?, ?, ?, ?)", log
            )
            db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot write the database: {exc}", file=str(temp)) from exc


def _file_mode(target: Path) -> int:
    """Keep the old database's mode; a new one gets 0666 minus the umask, as m2sh's would."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask

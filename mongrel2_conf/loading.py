"""Read a config from a file or a string: parse, build and validate it in one call.

``is_database`` tells a database from a config file by its sqlite header, whatever its name.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mongrel2_conf.build import Built, build_config
from mongrel2_conf.errors import ConfigError, Position
from mongrel2_conf.lenient import prune
from mongrel2_conf.model import Config
from mongrel2_conf.parser import parse
from mongrel2_conf.validate import find_warnings, validate

log = logging.getLogger("mongrel2_conf")
SQLITE_HEADER = b"SQLite format 3\0"


def parse_config(text: str, file: str = "<string>", *, lenient: bool = False) -> Config:
    """Parse, check and validate config ``text``; ``file`` names it in error positions.

    With ``lenient``, what m2sh ignores (unknown keywords, undefined names in a server's
    lists) is dropped with a warning instead of refused (see ``lenient.prune``). Warnings are
    logged.

    Raises:
        ConfigError: the first syntax error, or every problem the checks found.
    """
    return _logged(check_text(text, file, lenient=lenient)).config


def check_text(text: str, file: str = "<string>", *, lenient: bool = False) -> Built:
    """Like ``parse_config``, but the warnings are returned in ``Built.warnings``, not logged."""
    document = parse(text, file)
    ignored: list[str] = []
    if lenient:
        document, ignored = prune(document)
    built = build_config(document)
    problems = validate(built.config)
    if problems:
        raise ConfigError.collect(problems)
    built.warnings = [*ignored, *find_warnings(built.config)]
    return built


def _logged(built: Built) -> Built:
    for warning in built.warnings:
        log.warning("%s", warning)
    return built


def load_config(path: str | os.PathLike[str], *, lenient: bool = False) -> Config:
    """Read, parse, check and validate the m2sh config file at ``path`` (warnings are logged).

    Raises:
        ConfigError: the file cannot be read or is not valid UTF-8, or the config is invalid.
    """
    return load_built(path, lenient=lenient).config


def load_built(path: str | os.PathLike[str], *, lenient: bool = False) -> Built:
    """Like ``load_config``, also returning what each top-level name stands for."""
    return _logged(check_file(path, lenient=lenient))


def check_file(path: str | os.PathLike[str], *, lenient: bool = False) -> Built:
    """Like ``load_built``, but the warnings are returned in ``Built.warnings``, not logged."""
    return check_text(_read_text(Path(path)), str(path), lenient=lenient)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror}", file=str(path)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"the config is not valid UTF-8 (byte {data[exc.start]:#04x})"
        raise ConfigError(message, Position(str(path), line, column)) from exc


def is_database(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts with the sqlite header (a database, not a config file)."""
    try:
        with open(path, "rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False

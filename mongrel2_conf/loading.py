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
from mongrel2_conf.model import Config
from mongrel2_conf.parser import parse
from mongrel2_conf.validate import find_warnings, validate

log = logging.getLogger("mongrel2_conf")
SQLITE_HEADER = b"SQLite format 3\0"


def parse_config(text: str, file: str = "<string>") -> Config:
    """Parse, check and validate config ``text``; ``file`` names it in error positions.

    Raises:
        ConfigError: the first syntax error, or every problem the checks found.
    """
    return _parse_built(text, file).config


def _parse_built(text: str, file: str) -> Built:
    built = build_config(parse(text, file))
    problems = validate(built.config)
    if problems:
        raise ConfigError.collect(problems)
    for warning in find_warnings(built.config):
        log.warning("%s", warning)
    return built


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, parse, check and validate the m2sh config file at ``path``.

    Raises:
        ConfigError: the file cannot be read or is not valid UTF-8, or the config is invalid.
    """
    return load_built(path).config


def load_built(path: str | os.PathLike[str]) -> Built:
    """Like ``load_config``, also returning what each top-level name stands for."""
    return _parse_built(_read_text(Path(path)), str(path))


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

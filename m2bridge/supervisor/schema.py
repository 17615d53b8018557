"""Typed readers for TOML tables: each value is checked and every error names its dotted key.

Used by ``stack.py`` so that a bad stack file says ``watchers.hello.numprocesses: expected an
integer >= 0, got 'two'`` instead of a traceback.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from m2bridge.errors import ConfigError


class Table:
    """One TOML table plus its dotted path; readers consume keys so leftovers can be reported."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a table, got {_show(data)}")
        self.data: Mapping[str, Any] = data
        self.path = path
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        """The dotted name of ``name`` inside this table."""
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str) -> object:
        self._seen.add(name)
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return name in self.data

    def sub(self, name: str) -> Table:
        """A nested table (an empty one when the key is absent)."""
        value = self.get(name)
        return Table({} if value is None else value, self.key(name))

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.key(name)}: expected a non-empty string, got {_show(value)}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(
                f"{self.key(name)}: expected an integer >= {minimum}, got {_show(value)}"
            )
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise ConfigError(
                f"{self.key(name)}: expected a number >= {minimum}, got {_show(value)}"
            )
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {_show(value)}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        """A list of strings (a single string is accepted as a one-item list)."""
        value = self.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.key(name)}: expected a list of strings, got {_show(value)}")
        return tuple(value)

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        options = tuple(choices)
        value = self.string(name, default)
        if value not in options:
            raise ConfigError(
                f"{self.key(name)}: expected one of {', '.join(options)}, got {_show(value)}"
            )
        return value

    def mapping(self, name: str) -> dict[str, str]:
        """A table of string values (numbers and booleans are converted, like env vars)."""
        table = self.sub(name)
        result: dict[str, str] = {}
        for key, value in table.data.items():
            if isinstance(value, bool):
                value = "1" if value else "0"
            if not isinstance(value, str | int | float):
                raise ConfigError(f"{table.key(key)}: expected a string, got {_show(value)}")
            result[str(key)] = str(value)
        return result

    def check_unknown(self) -> None:
        """Raise for keys no reader asked for, suggesting the closest known key."""
        for name in self.data:
            if name not in self._seen:
                close = difflib.get_close_matches(name, sorted(self._seen), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{self.key(name)}: unknown key{hint}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

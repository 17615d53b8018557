"""Positions in a config file and the one exception this package raises on purpose.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """Where something is in a config file: 1-based line and column (in characters)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConfigError(Exception):
    """A Mongrel2 config cannot be read, is invalid, or cannot be written.

    ``str(error)`` is ``FILE:LINE:COLUMN: message`` (one line per problem when there are
    several). The first problem's location is in ``file``/``line``/``column``; they are None
    when the problem has no place in a file (objects built in Python, a missing database).

    Attributes:
        message: the first problem, without its location.
        file: the config file (or database) the first problem is in.
        line: its 1-based line, or None.
        column: its 1-based column, or None.
        problems: every problem found, each a ConfigError of its own (this one first).
    """

    def __init__(
        self,
        message: str,
        position: Position | None = None,
        *,
        file: str | None = None,
        problems: Sequence[ConfigError] = (),
    ) -> None:
        self.message = message
        self.file = position.file if position else file
        self.line = position.line if position else None
        self.column = position.column if position else None
        self.problems: tuple[ConfigError, ...] = tuple(problems) or (self,)
        super().__init__("\n".join(p.located() for p in self.problems))

    def located(self) -> str:
        """This problem alone, as ``FILE:LINE:COLUMN: message``."""
        if self.line is not None:
            return f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.file:
            return f"{self.file}: {self.message}"
        return self.message

    @classmethod
    def collect(cls, problems: Sequence[ConfigError]) -> ConfigError:
        """One error that carries several problems (the first gives the location)."""
        first = problems[0]
        error = cls(first.message, file=first.file, problems=problems)
        error.line, error.column = first.line, first.column
        return error

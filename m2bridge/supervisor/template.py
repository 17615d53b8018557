"""``$(...)`` substitutions in watcher commands: ``$(wid)``, ``$(sockets.NAME)``, ``$(env.X)``.

Also ``$(python)`` (the supervisor's interpreter) and ``$(name)`` (the watcher's name). A
reference nobody can resolve is a ConfigError naming the key it came from.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from m2bridge.errors import ConfigError

PATTERN = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_.\-]+)?)\)")


def references(texts: Iterable[str]) -> set[str]:
    """Every ``$(...)`` name used in ``texts`` (``"wid"``, ``"sockets.web"``, ...)."""
    return {match.group(1) for text in texts for match in PATTERN.finditer(text)}


def substitute(text: str, values: Mapping[str, str], where: str) -> str:
    """Replace each ``$(name)`` in ``text`` with ``values[name]``.

    Raises:
        ConfigError: a name is not in ``values``; the message names ``where``.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        try:
            return values[name]
        except KeyError:
            raise ConfigError(f"{where}: unknown substitution $({name})") from None

    return PATTERN.sub(replace, text)


def env_values(env: Mapping[str, str]) -> dict[str, str]:
    """The ``env.X`` entries of a substitution table."""
    return {f"env.{key}": value for key, value in env.items()}

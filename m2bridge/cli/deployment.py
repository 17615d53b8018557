"""The deployment file: the supervisors ``ctl`` and ``top`` address together, each by name,
control endpoint and token.

```
[[supervisor]]
name = "web1"
endpoint = "tcp://10.0.0.11:5555"
token_file = "secrets/web1.token"    # relative paths start from this file's directory
```
Every error names its key (``supervisor[2].endpoint: ...``, counting tables from 1), as the
stack file's errors do.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from m2bridge.errors import ConfigError
from m2bridge.supervisor.schema import Table

SCHEMES = ("ipc://", "tcp://")


@dataclass(frozen=True)
class SupervisorAddress:
    """How to reach one supervisor: its name in the view, control endpoint and token."""

    name: str
    endpoint: str
    token: str | None = None


def load_deployment(path: str | Path) -> list[SupervisorAddress]:
    """The supervisors of the deployment file at ``path``.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a key is wrong (named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--deployment: cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_deployment(data, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_deployment(data: object, base: Path) -> list[SupervisorAddress]:
    """The supervisors of a parsed deployment file; relative paths start from ``base``.

    Raises:
        ConfigError: a wrong or unknown key, named.
    """
    root = Table(data, "")
    entries = root.get("supervisor")
    root.check_unknown()
    if not isinstance(entries, list) or not entries:
        raise ConfigError("supervisor: expected one or more [[supervisor]] tables")
    supervisors = [
        _parse_supervisor(Table(entry, f"supervisor[{index}]"), base)
        for index, entry in enumerate(entries, start=1)
    ]
    _check_distinct(supervisors)
    return supervisors


def _parse_supervisor(table: Table, base: Path) -> SupervisorAddress:
    endpoint = table.string("endpoint")
    if endpoint is None:
        raise ConfigError(f"{table.key('endpoint')}: required (ipc://PATH or tcp://HOST:PORT)")
    if not endpoint.startswith(SCHEMES):
        raise ConfigError(f"{table.key('endpoint')}: expected ipc:// or tcp://, got {endpoint!r}")
    endpoint = _absolute_ipc(endpoint, base)
    name = table.string("name") or endpoint
    token = _token(table, base)
    table.check_unknown()
    if endpoint.startswith("tcp://") and not token:
        raise ConfigError(f"{table.key('token')}: a tcp:// endpoint needs a token (or token_file)")
    return SupervisorAddress(name, endpoint, token)


def _absolute_ipc(endpoint: str, base: Path) -> str:
    """An ``ipc://`` endpoint with a relative path made absolute from ``base``."""
    if not endpoint.startswith("ipc://"):
        return endpoint
    path = Path(endpoint.removeprefix("ipc://"))
    return endpoint if path.is_absolute() else f"ipc://{base / path}"


def _token(table: Table, base: Path) -> str | None:
    """``token``, or the content of ``token_file`` (not both)."""
    token = table.string("token")
    token_file = table.string("token_file")
    if token_file is None:
        return token
    if token is not None:
        raise ConfigError(f"{table.key('token_file')}: give token or token_file, not both")
    path = base / token_file
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{table.key('token_file')}: cannot read {path}: {exc.strerror}"
        ) from None


def _check_distinct(supervisors: Sequence[SupervisorAddress]) -> None:
    """Each name once: the rows of the view tell the supervisors apart by it."""
    seen: set[str] = set()
    for index, supervisor in enumerate(supervisors, start=1):
        if supervisor.name in seen:
            raise ConfigError(
                f"supervisor[{index}].name: {supervisor.name!r} is already the name of another"
            )
        seen.add(supervisor.name)

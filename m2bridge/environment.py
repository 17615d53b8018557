"""The ``M2BRIDGE_*`` environment variables: their names, and how each value is written and read.

The supervisor gives every process it starts ``M2BRIDGE_STATS_FILE`` (where to publish its
counters) and ``M2BRIDGE_WID`` (its slot, ``$(wid)``). In a stack with ``mongrel2`` watchers it
also gives them ``M2BRIDGE_MONGREL2_CHROOTS``: where each of those Mongrel2 servers really runs
(its chroot, resolved), which ``serve --config`` prefers to the config's relative chroot.
``m2bridge ctl`` reads ``M2BRIDGE_CONTROL`` (the control endpoint) and ``M2BRIDGE_TOKEN`` (its
token).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from m2bridge.errors import ConfigError

STATS_FILE = "M2BRIDGE_STATS_FILE"
WID = "M2BRIDGE_WID"
CONTROL = "M2BRIDGE_CONTROL"
TOKEN = "M2BRIDGE_TOKEN"
#: The web console's access token (``m2bridge web``; ``[web] token`` of a stack).
WEB_TOKEN = "M2BRIDGE_WEB_TOKEN"
MONGREL2_CHROOTS = "M2BRIDGE_MONGREL2_CHROOTS"
#: Digits a slot number may have (``$(wid)`` is small; a long number is a mistake).
_MAX_SLOT_DIGITS = 9


def worker_environment(stats_file: str, wid: int) -> dict[str, str]:
    """The variables the supervisor sets for the process it starts in slot ``wid``."""
    return {STATS_FILE: stats_file, WID: str(wid)}


def stats_file(environ: Mapping[str, str]) -> str | None:
    """Where the supervisor wants this worker's counters (None: not supervised)."""
    return environ.get(STATS_FILE) or None


def worker_slot(environ: Mapping[str, str]) -> int | None:
    """The slot the supervisor gave this process (None: not supervised).

    Raises:
        ConfigError: the variable holds something other than a slot number.
    """
    raw = environ.get(WID, "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > _MAX_SLOT_DIGITS:
        raise ConfigError(f"${WID} must be a slot number, not {raw[:20]!r}")
    return int(raw)


@dataclass(frozen=True)
class Mongrel2Chroot:
    """Where one supervised Mongrel2 server runs: its uuid, config file and resolved chroot."""

    server: str
    config: str
    chroot: str


def mongrel2_chroots_environment(chroots: Iterable[Mongrel2Chroot]) -> dict[str, str]:
    """``M2BRIDGE_MONGREL2_CHROOTS`` for ``chroots`` (nothing when there are none)."""
    entries = [{"server": c.server, "config": c.config, "chroot": c.chroot} for c in chroots]
    return {MONGREL2_CHROOTS: json.dumps(entries)} if entries else {}


def mongrel2_chroots(environ: Mapping[str, str]) -> list[Mongrel2Chroot]:
    """The supervised Mongrel2 servers of this worker's stack ([]: not told).

    Raises:
        ConfigError: the variable holds something else than what the supervisor writes.
    """
    raw = environ.get(MONGREL2_CHROOTS, "")
    if not raw:
        return []
    try:
        entries = json.loads(raw)
        return [
            Mongrel2Chroot(str(e["server"]), str(e["config"]), str(e["chroot"])) for e in entries
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"${MONGREL2_CHROOTS}: not a list of server/config/chroot") from exc

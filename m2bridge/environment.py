"""The ``M2BRIDGE_*`` environment variables: their names, and how each value is written and read.

The supervisor gives every process it starts ``M2BRIDGE_STATS_FILE`` (where to publish its
counters), ``M2BRIDGE_WID`` (its slot, ``$(wid)``) and ``M2BRIDGE_NOTICE_DIR`` (where the
processes of one watcher find each other's sibling notice endpoints); ``m2bridge ctl`` reads
``M2BRIDGE_CONTROL`` (the control endpoint) and ``M2BRIDGE_TOKEN`` (its token).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping

from m2bridge.errors import ConfigError

STATS_FILE = "M2BRIDGE_STATS_FILE"
WID = "M2BRIDGE_WID"
NOTICE_DIR = "M2BRIDGE_NOTICE_DIR"
CONTROL = "M2BRIDGE_CONTROL"
TOKEN = "M2BRIDGE_TOKEN"
#: Digits a slot number may have (``$(wid)`` is small; a long number is a mistake).
_MAX_SLOT_DIGITS = 9


def worker_environment(stats_file: str, wid: int, notice_dir: str) -> dict[str, str]:
    """The variables the supervisor sets for the process it starts in slot ``wid``."""
    return {STATS_FILE: stats_file, WID: str(wid), NOTICE_DIR: notice_dir}


def stats_file(environ: Mapping[str, str]) -> str | None:
    """Where the supervisor wants this worker's counters (None: not supervised)."""
    return environ.get(STATS_FILE) or None


def notice_dir(environ: Mapping[str, str]) -> str | None:
    """The sibling notice directory of this worker's watcher (None: no siblings)."""
    return environ.get(NOTICE_DIR) or None


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

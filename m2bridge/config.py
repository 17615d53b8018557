"""Worker settings: one frozen dataclass whose fields declare every ``m2bridge serve`` option.

Each field that is a command-line option carries an ``Option`` in its metadata: its flag
(the field name with dashes unless given), help, value type, choices, group, and whether a
``--workers N`` child gets it forwarded. The dataclass is the single home of every default;
the ``serve`` parser, ``build_config`` and the child command (``m2bridge.cli.serve``) are
derived from ``OPTIONS``, so an option is written once and none can be dropped silently.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from m2bridge import environment
from m2bridge.logs import LOG_FORMATS, LOG_LEVELS, access_log_format
from m2bridge.wire.sender import SENDER_RULE, is_sender_text

DEFAULT_SEND_SPEC = "tcp://127.0.0.1:9997"
DEFAULT_RECV_SPEC = "tcp://127.0.0.1:9996"
DEFAULT_CONCURRENCY = 1000
DEFAULT_GRACEFUL_TIMEOUT = 30.0
DEFAULT_CANCEL_GRACE = 1.0

_TCP_RE = re.compile(r"tcp://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):([0-9]{1,5})\Z")
_M2, _PROC, _REQ = "Mongrel2 endpoints", "processes", "requests"
_APP = "application"
#: ``--fd systemd``: the socket systemd passed (``m2bridge.systemd``).
SYSTEMD_FD = "systemd"
_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# ---------------------------------------------------------------------- value types


def endpoint(value: str) -> str:
    """An argparse type: a ZeroMQ endpoint Mongrel2 can bind, ``tcp://HOST:PORT`` or ``ipc://PATH``."""
    match = _TCP_RE.match(value)
    if match and 0 < int(match.group(1)) <= 65535:
        return value
    if value.startswith("ipc://") and len(value) > len("ipc://") and "\0" not in value:
        return value
    raise argparse.ArgumentTypeError(
        f"invalid endpoint {value!r}: expected tcp://HOST:PORT (port 1-65535) or ipc://PATH"
    )


def positive_int(value: str) -> int:
    """An argparse type: an integer >= 1."""
    number: int = _parse(int, value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return number


def non_negative_int(value: str) -> int:
    """An argparse type: an integer >= 0."""
    number: int = _parse(int, value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return number


def non_negative_float(value: str) -> float:
    """An argparse type: a number of seconds >= 0."""
    number: float = _parse(float, value)
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {value}")
    return number


def sender_ident(value: str) -> str:
    """An argparse type: a reply identity Mongrel2 accepts (``wire.sender``'s rule)."""
    if not is_sender_text(value):
        raise argparse.ArgumentTypeError(f"{value!r}: Mongrel2 drops replies unless {SENDER_RULE}")
    return value


def fd_spec(value: str) -> int | str:
    """An argparse type: a file descriptor number, or ``systemd`` (socket activation)."""
    if value == SYSTEMD_FD:
        return value
    return non_negative_int(value)


def env_assignment(value: str) -> str:
    """An argparse type: ``KEY=VALUE`` (KEY a shell variable name; VALUE may be empty)."""
    key, sep, rest = value.partition("=")
    if not sep or not _ENV_KEY_RE.match(key) or "\0" in rest:
        raise argparse.ArgumentTypeError(f"{value!r}: expected KEY=VALUE")
    return value


def access_format(value: str) -> str:
    """An argparse type: an ``--access-log-format`` of known atoms (``logs.ACCESS_ATOMS``)."""
    try:
        return access_log_format(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parse(kind: type[int] | type[float], value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


# ---------------------------------------------------------------------- the declaration


@dataclass(frozen=True)
class Option:
    """How one ``WorkerConfig`` field appears on the ``m2bridge serve`` command line.

    Attributes:
        group: the help section it is listed in.
        help: its help text (None: hidden from ``--help``).
        forward: whether each child of ``--workers N`` gets it (False: the child gets it
            another way, or it cannot apply to a child; say why in a comment).
        flag: the flag; empty means the field name with dashes.
        type: parses one command-line value.
        metavar: the value's name in the help.
        choices: the values allowed (after ``type``).
        repeat: may be given several times (the field is a tuple, in order).
        switch: takes no value (the field is a bool, True when given).
    """

    group: str
    help: str | None
    forward: bool
    flag: str = ""
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False
    switch: bool = False


def _option(default: Any, **declared: Any) -> Any:
    """A dataclass field holding ``default`` and, in its metadata, ``Option(**declared)``."""
    return field(default=default, metadata={"option": Option(**declared)})


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one worker process needs to know; see each field's ``Option`` help.

    ``app`` is the ``module:callable`` spec of the WSGI application (the positional argument);
    ``extra`` holds nothing the command line sets.
    """

    app: str
    send_specs: tuple[str, ...] = _option(
        (DEFAULT_SEND_SPEC,),
        group=_M2,
        forward=True,
        flag="--send-spec",
        type=endpoint,
        metavar="SPEC",
        repeat=True,
        help=f"Mongrel2's send_spec, repeatable ({DEFAULT_SEND_SPEC})",
    )
    recv_specs: tuple[str, ...] = _option(
        (DEFAULT_RECV_SPEC,),
        group=_M2,
        forward=True,
        flag="--recv-spec",
        type=endpoint,
        metavar="SPEC",
        repeat=True,
        help=f"its recv_spec, in --send-spec order ({DEFAULT_RECV_SPEC})",
    )
    sender_id: str | None = _option(
        None,
        group=_M2,
        forward=True,
        type=sender_ident,
        metavar="ID",
        help="identity at the start of replies (default: the request's sender)",
    )
    # --config/--handler are read once by the parent: the children get the specs, chroot,
    # upload temp store and sender id found there.
    config: str | None = _option(
        None,
        group=_M2,
        forward=False,
        metavar="PATH",
        help="read the endpoints from this Mongrel2 config",
    )
    handler: tuple[str, ...] = _option(
        (),
        group=_M2,
        forward=False,
        metavar="NAME[@SERVER]",
        repeat=True,
        help="a handler (route, send_ident or name) in --config, repeatable; "
        "@SERVER picks one server's (uuid or name)",
    )
    relay: tuple[str, ...] = _option(
        (),
        group=_M2,
        forward=True,
        type=endpoint,
        metavar="ENDPOINT",
        repeat=True,
        help="take requests from this relay (m2bridge relay), not from --send-spec; "
        "repeatable: one per --recv-spec, in order (a front end each)",
    )
    m2_chroot: str = _option(
        ".",
        group=_M2,
        forward=True,
        metavar="DIR",
        help="Mongrel2's chroot, for async upload files (default: .)",
    )
    upload_temp_store: str | None = _option(
        None,
        group=_M2,
        forward=True,
        metavar="TEMPLATE",
        help="Mongrel2's upload.temp_store; other upload paths are refused",
    )
    # --fd/--bind serve in one process: refused with --workers N.
    # --fd systemd is resolved to a number by ``serve`` (``m2bridge.systemd``).
    fd: int | None = _option(
        None,
        group=_M2,
        forward=False,
        type=fd_spec,
        metavar="N|systemd",
        help="serve HTTP on this inherited listening socket instead "
        "(systemd: the one systemd socket activation passed, $LISTEN_FDS)",
    )
    fd_name: str | None = _option(
        None,
        group=_M2,
        forward=False,
        metavar="NAME",
        help="with --fd systemd: the socket of this FileDescriptorName= ($LISTEN_FDNAMES)",
    )
    bind: str | None = _option(
        None,
        group=_M2,
        forward=False,
        metavar="HOST:PORT",
        help="serve HTTP on HOST:PORT instead",
    )
    # Each child runs one process (--workers 1).
    workers: int = _option(
        1,
        group=_PROC,
        forward=False,
        type=positive_int,
        metavar="N",
        help="worker processes, supervised (default 1: this process)",
    )
    concurrency: int = _option(
        DEFAULT_CONCURRENCY,
        group=_PROC,
        forward=True,
        type=positive_int,
        metavar="C",
        help=f"greenlets per worker (default {DEFAULT_CONCURRENCY})",
    )
    graceful_timeout: float = _option(
        DEFAULT_GRACEFUL_TIMEOUT,
        group=_PROC,
        forward=True,
        type=non_negative_float,
        metavar="S",
        help="seconds to finish requests when stopping",
    )
    max_requests: int = _option(
        0,
        group=_PROC,
        forward=True,
        type=non_negative_int,
        metavar="N",
        help="exit (to be replaced) after N requests (0: never)",
    )
    max_requests_jitter: int = _option(
        0,
        group=_PROC,
        forward=True,
        type=non_negative_int,
        metavar="N",
        help="add up to N random requests to --max-requests",
    )
    # Each child gets its own slot ($(wid)) and stats file (environment.STATS_FILE).
    worker_slot: int | None = _option(
        None,
        group=_PROC,
        forward=False,
        type=non_negative_int,
        metavar="N",
        help=None,
    )
    stats_file: str | None = _option(
        None,
        group=_PROC,
        forward=False,
        metavar="F",
        help=f"publish counters as JSON here (default: ${environment.STATS_FILE})",
    )
    # The reloading parent runs one worker; refused with --workers N.
    reload: bool = _option(
        False,
        group=_PROC,
        forward=False,
        switch=True,
        help="development: restart the worker when a Python file of the app changes",
    )
    log_level: str = _option(
        "info",
        group=_PROC,
        forward=True,
        type=str.lower,
        choices=LOG_LEVELS,
        help="the lowest level logged (default info)",
    )
    log_format: str = _option(
        "text",
        group=_PROC,
        forward=True,
        choices=LOG_FORMATS,
        help="text lines, or one JSON object per line (also the access log)",
    )
    access_log: str | None = _option(
        None,
        group=_PROC,
        forward=True,
        metavar="-|FILE",
        help="one line per request, - for stderr",
    )
    access_log_format: str | None = _option(
        None,
        group=_PROC,
        forward=True,
        type=access_format,
        metavar="FMT",
        help="the access log line, of gunicorn-like atoms: %%(h)s %%(t)s %%(r)s %%(s)s "
        "%%(b)s %%(D)s ... and %%(Q)s, the queue time in ms (m2bridge.logs.ACCESS_ATOMS)",
    )
    script_name: str = _option(
        "",
        group=_REQ,
        forward=True,
        metavar="S",
        help="SCRIPT_NAME: '', a /prefix, or 'route' (Mongrel2's route pattern)",
    )
    timeout: float = _option(
        0.0,
        group=_REQ,
        forward=True,
        type=non_negative_float,
        metavar="S",
        help="answer 504 and cancel requests running longer (0: no limit)",
    )
    max_in_flight: int = _option(
        0,
        group=_REQ,
        forward=True,
        type=non_negative_int,
        metavar="N",
        help="answer 503 + Retry-After past N requests in flight (0: --concurrency)",
    )
    cancel_grace: float = _option(
        DEFAULT_CANCEL_GRACE,
        group=_REQ,
        forward=True,
        type=non_negative_float,
        metavar="S",
        help="seconds a request may run after its client left",
    )
    validate: bool = _option(
        False,
        group=_REQ,
        forward=True,
        switch=True,
        help="check PEP 3333 on both sides (wsgiref.validate); violations give 500",
    )
    chdir: str | None = _option(
        None,
        group=_APP,
        forward=True,
        metavar="DIR",
        help="change to DIR before loading the app",
    )
    pythonpath: str | None = _option(
        None,
        group=_APP,
        forward=True,
        metavar="DIR[,DIR...]",
        help="put these directories first on sys.path (after --chdir)",
    )
    env: tuple[str, ...] = _option(
        (),
        group=_APP,
        forward=True,
        type=env_assignment,
        metavar="KEY=VALUE",
        repeat=True,
        help="set this environment variable before loading the app, repeatable",
    )
    extra: dict[str, str] = field(default_factory=dict)


#: Every command-line option of ``m2bridge serve``, by field name, in help order.
OPTIONS: dict[str, Option] = {
    f.name: f.metadata["option"] for f in fields(WorkerConfig) if "option" in f.metadata
}


def flag_of(name: str) -> str:
    """The command-line flag of the option ``name`` (a ``WorkerConfig`` field)."""
    return OPTIONS[name].flag or "--" + name.replace("_", "-")


def request_limit(max_requests: int, jitter: int, rng: random.Random | None = None) -> int:
    """Requests after which a worker drains and exits (0: never); jitter staggers restarts."""
    if max_requests <= 0:
        return 0
    return max_requests + (rng or random.Random()).randint(0, max(jitter, 0))

"""``m2bridge serve MODULE:APP``: serve a WSGI app as a Mongrel2 handler (or on a socket).

Argument parsing and dispatch only. Flags are the ``WorkerConfig`` field names with dashes.
Where the work goes:

- ``--fd N`` / ``--bind HOST:PORT``: the fd-path worker, ``m2bridge.worker.fd_worker.main``;
- ``--workers N`` (N > 1): ``m2bridge.supervisor.serve_workers`` runs N copies of this command
  with ``--workers 1 --worker-slot $(wid)`` (the project's one process manager);
- otherwise this process becomes one ZeroMQ worker, ``m2bridge.worker.zmq_worker.main``.

``--config PATH --handler NAME`` reads the endpoints, chroot and upload temp store from a
Mongrel2 config (``mongrel2_conf.find_handler``). Exit codes: 0 ok, 1 error (one line on
stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from dataclasses import replace
from typing import Any

from m2bridge.config import (
    DEFAULT_CANCEL_GRACE,
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACEFUL_TIMEOUT,
    DEFAULT_RECV_SPEC,
    DEFAULT_SEND_SPEC,
    WorkerConfig,
)
from m2bridge.errors import ConfigError, M2BridgeError
from m2bridge.logs import LOG_LEVELS

#: The supervisor tells each worker where to publish its counters in this variable.
STATS_ENV = "M2BRIDGE_STATS_FILE"
#: The slot the supervisor gives each process of a watcher (``$(wid)``), for ``--worker-slot``.
WID_ENV = "M2BRIDGE_WID"
_TCP_RE = re.compile(r"tcp://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):([0-9]{1,5})\Z")
_IDENT_RE = re.compile(r"[A-Za-z0-9-]+\Z")


class UsageError(M2BridgeError):
    """The options contradict each other (exit status 2)."""


# ---------------------------------------------------------------------- option types


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
    """An argparse type: a reply identity Mongrel2 accepts (``[A-Za-z0-9-]+``)."""
    if not _IDENT_RE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: Mongrel2 drops replies unless [A-Za-z0-9-]+")
    return value


def _parse(kind: type[int] | type[float], value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


# ---------------------------------------------------------------------- parser


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Create the ``serve`` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a WSGI app as a Mongrel2 handler",
        description="Serve the WSGI application MODULE:APP as a Mongrel2 handler over ZeroMQ "
        "(or over HTTP with --fd/--bind).",
    )
    parser.add_argument("app", metavar="MODULE:APP", help="the WSGI application, e.g. pkg.mod:app")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for title, flag, options in _OPTIONS:
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        groups[title].add_argument(flag, **options)
    parser.set_defaults(run=run, parser=parser)


_M2, _PROC, _REQ = "Mongrel2 endpoints", "processes", "requests"
#: (group, flag, argparse options); flags are WorkerConfig field names with dashes.
_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (_M2, "--send-spec", {"dest": "send_specs", "action": "append", "type": endpoint,
        "metavar": "SPEC", "help": f"Mongrel2's send_spec, repeatable ({DEFAULT_SEND_SPEC})"}),
    (_M2, "--recv-spec", {"dest": "recv_specs", "action": "append", "type": endpoint,
        "metavar": "SPEC", "help": f"its recv_spec, in --send-spec order ({DEFAULT_RECV_SPEC})"}),
    (_M2, "--sender-id", {"type": sender_ident, "metavar": "ID",
        "help": "identity at the start of replies (default: the request's sender)"}),
    (_M2, "--config", {"metavar": "PATH", "help": "read the endpoints from this Mongrel2 config"}),
    (_M2, "--handler", {"metavar": "NAME[@SERVER]", "action": "append",
        "help": "a handler (route, send_ident or name) in --config, repeatable; "
                "@SERVER picks one server's (uuid or name)"}),
    (_M2, "--relay", {"type": endpoint, "metavar": "ENDPOINT",
        "help": "take requests from this relay (m2bridge relay), not from --send-spec"}),
    (_M2, "--m2-chroot", {"default": ".", "metavar": "DIR",
        "help": "Mongrel2's chroot, for async upload files (default: .)"}),
    (_M2, "--upload-temp-store", {"metavar": "TEMPLATE",
        "help": "Mongrel2's upload.temp_store; other upload paths are refused"}),
    (_M2, "--fd", {"type": non_negative_int, "metavar": "N",
        "help": "serve HTTP on this inherited listening socket instead"}),
    (_M2, "--bind", {"metavar": "HOST:PORT", "help": "serve HTTP on HOST:PORT instead"}),
    (_PROC, "--workers", {"type": positive_int, "default": 1, "metavar": "N",
        "help": "worker processes, supervised (default 1: this process)"}),
    (_PROC, "--concurrency", {"type": positive_int, "default": DEFAULT_CONCURRENCY, "metavar": "C",
        "help": f"greenlets per worker (default {DEFAULT_CONCURRENCY})"}),
    (_PROC, "--graceful-timeout", {"type": non_negative_float, "metavar": "S",
        "default": DEFAULT_GRACEFUL_TIMEOUT, "help": "seconds to finish requests when stopping"}),
    (_PROC, "--max-requests", {"type": non_negative_int, "default": 0, "metavar": "N",
        "help": "exit (to be replaced) after N requests (0: never)"}),
    (_PROC, "--max-requests-jitter", {"type": non_negative_int, "default": 0, "metavar": "N",
        "help": "add up to N random requests to --max-requests"}),
    (_PROC, "--worker-slot", {"type": non_negative_int, "metavar": "N", "help": argparse.SUPPRESS}),
    (_PROC, "--stats-file", {"metavar": "F",
        "help": f"publish counters as JSON here (default: ${STATS_ENV})"}),
    (_PROC, "--log-level", {"default": "info", "choices": LOG_LEVELS, "type": str.lower}),
    (_PROC, "--access-log", {"metavar": "-|FILE", "help": "one line per request, - for stderr"}),
    (_REQ, "--script-name", {"default": "", "metavar": "S",
        "help": "SCRIPT_NAME: '', a /prefix, or 'route' (Mongrel2's route pattern)"}),
    (_REQ, "--timeout", {"type": non_negative_float, "default": 0.0, "metavar": "S",
        "help": "answer 504 and cancel requests running longer (0: no limit)"}),
    (_REQ, "--max-in-flight", {"type": non_negative_int, "default": 0, "metavar": "N",
        "help": "answer 503 + Retry-After past N requests in flight (0: --concurrency)"}),
    (_REQ, "--cancel-grace", {"type": non_negative_float, "default": DEFAULT_CANCEL_GRACE,
        "metavar": "S", "help": "seconds a request may run after its client left"}),
    (_REQ, "--validate", {"action": "store_true",
        "help": "check PEP 3333 on both sides (wsgiref.validate); violations give 500"}),
)  # fmt: skip


# ---------------------------------------------------------------------- config


def build_config(args: argparse.Namespace) -> WorkerConfig:
    """Turn parsed options into a ``WorkerConfig`` (reading ``--config`` if given).

    Raises:
        UsageError: options that contradict each other.
        ConfigError: the Mongrel2 config cannot be read or has no such handler.
    """
    _check_combinations(args)
    config = WorkerConfig(
        app=args.app,
        send_specs=_send_specs(args),
        recv_specs=tuple(args.recv_specs or (DEFAULT_RECV_SPEC,)),
        sender_id=args.sender_id,
        concurrency=args.concurrency,
        workers=args.workers,
        graceful_timeout=args.graceful_timeout,
        timeout=args.timeout,
        max_in_flight=args.max_in_flight,
        max_requests=args.max_requests,
        max_requests_jitter=args.max_requests_jitter,
        access_log=args.access_log,
        log_level=args.log_level,
        script_name=args.script_name,
        m2_chroot=args.m2_chroot,
        upload_temp_store=args.upload_temp_store,
        cancel_grace=args.cancel_grace,
        fd=args.fd,
        bind=args.bind,
        worker_slot=_worker_slot(args),
        stats_file=args.stats_file or os.environ.get(STATS_ENV) or None,
        validate=args.validate,
        relay=args.relay,
    )
    if args.config:
        config = _from_mongrel2_config(config, args.config, args.handler)
    return config


def _worker_slot(args: argparse.Namespace) -> int | None:
    """``--worker-slot``, else the slot the supervisor put in ``$M2BRIDGE_WID``: a worker in
    any stack-file command knows its slot (and so joins its siblings' notice bus)."""
    if args.worker_slot is not None:
        slot: int = args.worker_slot
        return slot
    raw = os.environ.get(WID_ENV, "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise ConfigError(f"${WID_ENV} must be a slot number, not {raw[:20]!r}")
    return int(raw)


def _send_specs(args: argparse.Namespace) -> tuple[str, ...]:
    if args.relay:  # unused: requests come from the relay; one per --recv-spec
        return (args.relay,) * len(args.recv_specs or (DEFAULT_RECV_SPEC,))
    return tuple(args.send_specs or (DEFAULT_SEND_SPEC,))


def _check_combinations(args: argparse.Namespace) -> None:
    if args.relay and (args.send_specs or args.fd is not None or args.bind):
        raise UsageError("--relay replaces --send-spec (and serves Mongrel2, not --fd/--bind)")
    if not args.relay and len(args.send_specs or ()) != len(args.recv_specs or ()):
        raise UsageError("give as many --send-spec as --recv-spec (they pair up in order)")
    if bool(args.config) != bool(args.handler):
        raise UsageError("--config and --handler go together")
    if args.config and args.send_specs:
        raise UsageError("--config/--handler and --send-spec/--recv-spec exclude each other")
    if args.fd is not None and args.bind:
        raise UsageError("--fd and --bind exclude each other")
    if (args.fd is not None or args.bind) and args.workers > 1:
        raise UsageError(
            "--fd/--bind serve in this one process; run several under 'm2bridge up' instead"
        )
    if args.script_name not in ("", "route") and not args.script_name.startswith("/"):
        raise UsageError(f"--script-name {args.script_name!r}: expected '', 'route' or /prefix")


def _from_mongrel2_config(config: WorkerConfig, path: str, names: list[str]) -> WorkerConfig:
    try:
        mongrel2_conf = importlib.import_module("mongrel2_conf")
    except ImportError as exc:
        raise ConfigError(f"--config needs the mongrel2_conf package ({exc})") from exc
    try:
        found = [mongrel2_conf.find_handler(path, *_handler_and_server(name)) for name in names]
    except mongrel2_conf.ConfigError as exc:
        raise ConfigError(str(exc)) from exc
    if len({(f.chroot or ".", f.upload_temp_store) for f in found}) > 1:
        raise ConfigError(
            "--handler: these handlers' servers differ in chroot or upload.temp_store; "
            "run one worker per server"
        )
    first = found[0]
    return replace(
        config,
        send_specs=tuple(f.send_spec for f in found),
        recv_specs=tuple(f.recv_spec for f in found),
        # several servers: each channel learns its recv_ident from Mongrel2's subscription
        sender_id=config.sender_id or (first.recv_ident if len(found) == 1 else None) or None,
        m2_chroot=first.chroot or ".",
        upload_temp_store=config.upload_temp_store or first.upload_temp_store,
    )


def _handler_and_server(spec: str) -> tuple[str, str | None]:
    """``NAME@SERVER`` -> (NAME, SERVER); a route like ``@chat`` has no server part."""
    name, sep, server = spec.rpartition("@")
    return (name, server) if sep and name and server else (spec, None)


def child_argv(config: WorkerConfig) -> list[str]:
    """The command the supervisor runs for each worker of ``--workers N`` (slot ``$(wid)``)."""
    argv = [sys.executable, "-m", "m2bridge", "serve", config.app]
    for send_spec, recv_spec in zip(config.send_specs, config.recv_specs, strict=True):
        if config.relay:  # the relay stands for every send_spec
            argv += ["--recv-spec", recv_spec]
        else:
            argv += ["--send-spec", send_spec, "--recv-spec", recv_spec]
    defaults = WorkerConfig(app=config.app)
    for name in _FORWARDED:
        value = getattr(config, name)
        if value is not None and value != getattr(defaults, name):
            argv += ["--" + name.replace("_", "-"), str(value)]
    if config.validate:
        argv.append("--validate")
    return [*argv, "--workers", "1", "--worker-slot", "$(wid)"]


_FORWARDED = (
    "sender_id",
    "concurrency",
    "graceful_timeout",
    "timeout",
    "max_in_flight",
    "max_requests",
    "max_requests_jitter",
    "access_log",
    "log_level",
    "script_name",
    "m2_chroot",
    "upload_temp_store",
    "cancel_grace",
    "relay",
)


def supervisor_name(app: str) -> str:
    """The name of the supervisor of ``--workers N`` (its control socket: ``ctl --name``)."""
    return "serve-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", app).strip("-") or "app")


# ---------------------------------------------------------------------- dispatch


def run(args: argparse.Namespace) -> int:
    """Entry point of ``m2bridge serve``."""
    try:
        config = build_config(args)
    except UsageError as exc:
        args.parser.error(str(exc))  # exits 2
    except ConfigError as exc:
        return _fail(exc)
    try:
        return _dispatch(config)
    except M2BridgeError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        return 1


def _dispatch(config: WorkerConfig) -> int:
    if config.fd is not None or config.bind:
        fdworker = _import("m2bridge.worker.fd_worker", "the fd path (--fd/--bind)")
        return int(fdworker.main(config))
    if config.workers > 1:
        supervisor = _import("m2bridge.supervisor", "--workers N")
        return int(
            supervisor.serve_workers(
                child_argv(config),
                config.workers,
                config.graceful_timeout,
                supervisor_name(config.app),
            )
        )
    from m2bridge.worker import zmq_worker as worker

    return worker.main(config)


def _import(module: str, feature: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise ConfigError(
                f"{feature} is not available in this build ({module} missing)"
            ) from exc
        raise


def _fail(exc: BaseException) -> int:
    print(f"m2bridge serve: error: {exc}", file=sys.stderr)
    return 1

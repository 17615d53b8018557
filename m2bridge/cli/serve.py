"""``m2bridge serve MODULE:APP``: serve a WSGI app as a Mongrel2 handler (or on a socket).

Argument parsing and dispatch only. The flags, their defaults and what a ``--workers N`` child
gets forwarded all come from the declaration in ``m2bridge.config`` (``OPTIONS``).
Where the work goes:

- ``--reload`` (development): ``m2bridge.reloader`` runs this command without it as a child,
  and restarts it when a Python file of the app changes;
- ``--fd N`` / ``--bind HOST:PORT``: the fd-path worker, ``m2bridge.worker.fd_worker.main``;
  ``--fd systemd`` takes the socket systemd passed (``m2bridge.systemd``: ``$LISTEN_FDS`` for
  this pid, ``--fd-name`` picks one by name) and removes those variables from the environment;
- ``--workers N`` (N > 1): ``m2bridge.supervisor.serve_workers`` runs N copies of this command
  with ``--workers 1 --worker-slot $(wid)`` (the project's one process manager), behind an
  ``m2bridge relay`` it also runs unless ``--relay`` is given: several workers straight on
  Mongrel2 would reorder pipelined answers (docs/decisions/0001-multi-worker-topology.md);
- otherwise this process becomes one ZeroMQ worker, ``m2bridge.worker.zmq_worker.main``.

``--config PATH --handler NAME`` reads the endpoints, chroot and upload temp store from a
Mongrel2 config (``mongrel2_conf.find_handler``); under ``m2bridge up`` the chroot of a server
the stack runs is where its ``mongrel2`` watcher runs it (``M2BRIDGE_MONGREL2_CHROOTS``).
``--chdir``, ``--pythonpath`` and ``--env`` are applied (``loader.prepare``) in the process that
loads the app, never in the parent of ``--workers N`` (each child gets them forwarded).
Exit codes: 0 ok, 1 error (one line on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from dataclasses import fields, replace
from typing import Any

from m2bridge import environment, systemd
from m2bridge.config import (
    DEFAULT_RECV_SPEC,
    DEFAULT_SEND_SPEC,
    OPTIONS,
    SYSTEMD_FD,
    Option,
    WorkerConfig,
    flag_of,
)
from m2bridge.errors import ConfigError, M2BridgeError
from m2bridge.loader import prepare
from m2bridge.relay.wire import relay_sources


class UsageError(M2BridgeError):
    """The options contradict each other (exit status 2)."""


# ---------------------------------------------------------------------- parser


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Create the ``serve`` parser: ``MODULE:APP`` plus one flag per ``config.OPTIONS`` entry."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a WSGI app as a Mongrel2 handler",
        description="Serve the WSGI application MODULE:APP as a Mongrel2 handler over ZeroMQ "
        "(or over HTTP with --fd/--bind).",
    )
    parser.add_argument("app", metavar="MODULE:APP", help="the WSGI application, e.g. pkg.mod:app")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, option in OPTIONS.items():
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        keywords = _argparse_options(option, _DEFAULTS[name])
        groups[option.group].add_argument(flag_of(name), dest=name, **keywords)
    parser.set_defaults(run=run, parser=parser)


#: Each option's default: its field's.
_DEFAULTS = {f.name: f.default for f in fields(WorkerConfig) if f.name in OPTIONS}


def _argparse_options(option: Option, default: Any) -> dict[str, Any]:
    """The ``add_argument`` keywords of ``option`` (a repeatable one defaults to None, so
    that "not given" can be told apart)."""
    if option.repeat:
        default = None
    if option.switch:
        return {"action": "store_true", "default": default, "help": option.help}
    declared = {
        "action": "append" if option.repeat else "store",
        "default": default,
        "type": option.type,
        "metavar": option.metavar,
        "choices": option.choices,
        "help": argparse.SUPPRESS if option.help is None else option.help,
    }
    return {key: value for key, value in declared.items() if value is not None or key == "default"}


# ---------------------------------------------------------------------- config


def build_config(args: argparse.Namespace) -> WorkerConfig:
    """Turn parsed options into a ``WorkerConfig`` (reading ``--config`` if given).

    An option not given keeps its field's default; ``--worker-slot`` and ``--stats-file``
    default to what the supervisor put in the environment. ``--fd systemd`` becomes the
    descriptor systemd passed, and the ``LISTEN_*`` variables leave ``os.environ``.

    Raises:
        UsageError: options that contradict each other.
        ConfigError: the Mongrel2 config cannot be read or has no such handler, the
            supervisor's slot variable is not a number, or systemd passed no such socket.
    """
    _check_combinations(args)
    given = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    values: dict[str, Any] = {
        name: tuple(value) if OPTIONS[name].repeat else value for name, value in given.items()
    }
    values["send_specs"] = _send_specs(args)
    if args.worker_slot is None:
        values["worker_slot"] = environment.worker_slot(os.environ)
    values["stats_file"] = args.stats_file or environment.stats_file(os.environ)
    if args.fd == SYSTEMD_FD:
        values["fd"] = systemd.select_fd(os.environ, os.getpid(), args.fd_name)
        systemd.forget(os.environ)
    config = WorkerConfig(app=args.app, **values)
    if args.config:
        config = _from_mongrel2_config(config, args.config, args.handler)
        if config.relay:
            _relay_sources(list(config.relay), list(config.recv_specs))
    return config


def _send_specs(args: argparse.Namespace) -> tuple[str, ...]:
    if args.relay and args.config:  # the config names the servers: checked once it is read
        return tuple(args.relay)
    if args.relay:  # unused: requests come from the relays; one per --recv-spec
        return tuple(relay for relay, _ in _relay_sources(args.relay, args.recv_specs))
    return tuple(args.send_specs or (DEFAULT_SEND_SPEC,))


def _relay_sources(relays: list[str], recv_specs: list[str] | None) -> list[tuple[str, int]]:
    try:
        return relay_sources(tuple(relays), len(recv_specs or (DEFAULT_RECV_SPEC,)))
    except ValueError:
        raise UsageError(
            "give one --relay, or one per --recv-spec (they pair up in order: a front end each)"
        ) from None


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
    if args.fd_name is not None and args.fd != SYSTEMD_FD:
        raise UsageError("--fd-name names a socket of --fd systemd")
    if args.reload and args.workers > 1:
        raise UsageError(
            "--reload runs one worker; with --workers N use 'm2bridge ctl reload' instead"
        )
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
    supervised = environment.mongrel2_chroots(os.environ)
    chroots = [_chroot_of(f.server_uuid, f.chroot, path, supervised) for f in found]
    if len({(c, f.upload_temp_store) for c, f in zip(chroots, found, strict=True)}) > 1:
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
        m2_chroot=chroots[0],
        upload_temp_store=config.upload_temp_store or first.upload_temp_store,
    )


def _chroot_of(
    server: str, configured: str, path: str, supervised: list[environment.Mongrel2Chroot]
) -> str:
    """Mongrel2's chroot for ``server``: where the supervisor runs it (a stack's mongrel2
    watcher), else the config's chroot (relative to this process's cwd).

    Raises:
        ConfigError: several supervised servers have this uuid, in other directories, and
            none of them runs the config file ``path``.
    """
    matches = {c.chroot: c for c in supervised if c.server == server}
    if len(matches) > 1:
        same_file = {c.chroot for c in matches.values() if _same_file(c.config, path)}
        if len(same_file) != 1:
            listed = ", ".join(f"{c.config} in {c.chroot}" for c in matches.values())
            raise ConfigError(
                f"--config: several mongrel2 watchers run server {server!r}: {listed}"
            )
        return same_file.pop()
    return next(iter(matches), configured or ".")


def _same_file(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _handler_and_server(spec: str) -> tuple[str, str | None]:
    """``NAME@SERVER`` -> (NAME, SERVER); a route like ``@chat`` has no server part."""
    name, sep, server = spec.rpartition("@")
    return (name, server) if sep and name and server else (spec, None)


def child_argv(config: WorkerConfig) -> list[str]:
    """The command the supervisor runs for each worker of ``--workers N`` (slot ``$(wid)``):
    every option declared ``forward`` whose value is not the default."""
    argv = [sys.executable, "-m", "m2bridge", "serve", config.app]
    defaults = WorkerConfig(app=config.app)
    for name, option in OPTIONS.items():
        value = getattr(config, name)
        if not option.forward or value == getattr(defaults, name):
            continue
        if name == "send_specs" and config.relay:
            continue  # the relay stands for every send_spec
        argv += _flag_and_values(flag_of(name), option, value)
    return [*argv, "--workers", "1", "--worker-slot", "$(wid)"]


#: Options the reloading parent does not hand its one child: it resolved them (--config,
#: --handler, --fd-name) or they are its own (--reload, --workers).
_KEPT_BY_THE_RELOADER = frozenset({"config", "handler", "fd_name", "reload", "workers"})


def reload_child_argv(config: WorkerConfig) -> list[str]:
    """The command ``--reload`` runs (and restarts): this one, without ``--reload``, with
    every option whose value is not the default (``--chdir`` made absolute)."""
    if config.chdir:
        config = replace(config, chdir=os.path.abspath(config.chdir))
    argv = [sys.executable, "-m", "m2bridge", "serve", config.app]
    defaults = WorkerConfig(app=config.app)
    for name, option in OPTIONS.items():
        value = getattr(config, name)
        if name in _KEPT_BY_THE_RELOADER or value == getattr(defaults, name):
            continue
        if name == "send_specs" and config.relay:
            continue
        argv += _flag_and_values(flag_of(name), option, value)
    return argv


def relay_argv(config: WorkerConfig) -> list[str]:
    """The ``m2bridge relay`` that ``--workers N`` runs in front of its workers: it reads
    ``config``'s send_specs (in order: the workers' recv_specs pair with them) and binds
    ``config.relay``."""
    assert len(config.relay) == 1, "the relay's endpoint"
    specs = [word for spec in config.send_specs for word in ("--send-spec", spec)]
    if len(config.recv_specs) == len(config.send_specs):  # lets it close a killed worker's
        specs += [word for spec in config.recv_specs for word in ("--recv-spec", spec)]
    return [sys.executable, "-m", "m2bridge", "relay", *specs, "--bind", config.relay[0]]


def _flag_and_values(flag: str, option: Option, value: Any) -> list[str]:
    if option.switch:
        return [flag] if value else []
    if option.repeat:
        return [word for item in value for word in (flag, str(item))]
    return [flag, str(value)]


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
    if config.reload:
        reloader = _import("m2bridge.reloader", "--reload")
        return int(reloader.main(config, reload_child_argv(config)))
    if config.workers == 1:
        prepare(config.chdir, config.pythonpath, config.env)
    if config.fd is not None or config.bind:
        fdworker = _import("m2bridge.worker.fd_worker", "the fd path (--fd/--bind)")
        return int(fdworker.main(config))
    if config.workers > 1:
        supervisor = _import("m2bridge.supervisor", "--workers N")
        name = supervisor_name(config.app)
        relay = None
        if not config.relay:
            config = replace(config, relay=(supervisor.relay_endpoint(name),))
            relay = relay_argv(config)
        return int(
            supervisor.serve_workers(
                child_argv(config), config.workers, config.graceful_timeout, name, relay
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

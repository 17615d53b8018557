"""The ``config`` commands: ``load FILE --db PATH``, ``check FILE``, ``show --db PATH [--json]``.

Used by ``m2bridge config ...`` and by ``python -m mongrel2_conf ...``. Exit codes: 0 ok,
1 invalid config or unreadable file (nothing written), 2 usage. ``load`` and ``check`` are
strict by default; ``--lenient`` loads what m2sh loads, each thing it ignores printed as a
``warning: FILE:LINE:COLUMN: ...`` line on stderr.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from mongrel2_conf.errors import ConfigError
from mongrel2_conf.loading import check_file
from mongrel2_conf.model import Config, Dir, Handler, Proxy
from mongrel2_conf.reader import load_any
from mongrel2_conf.show import config_to_json, format_config
from mongrel2_conf.writer import write_config

log = logging.getLogger("mongrel2_conf")
DEFAULT_DB = "config.sqlite"


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add the ``load``, ``check`` and ``show`` subcommands to ``parser``."""
    sub = parser.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    load = sub.add_parser("load", help="check an m2sh config file and write its sqlite database")
    load.add_argument("file", help="the config file (m2sh's language)")
    load.add_argument("--db", default=DEFAULT_DB, help=f"the database to write ({DEFAULT_DB})")
    _add_lenient(load)
    load.set_defaults(config_run=run_load)
    check = sub.add_parser("check", help="check an m2sh config file; write nothing")
    check.add_argument("file", help="the config file (m2sh's language)")
    _add_lenient(check)
    check.set_defaults(config_run=run_check)
    show = sub.add_parser("show", help="show servers, hosts, routes and handlers of a config")
    show.add_argument(
        "--db", default=DEFAULT_DB, help=f"a database or a config file ({DEFAULT_DB})"
    )
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.set_defaults(config_run=run_show)


def _add_lenient(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="load what m2sh loads: drop what it ignores (unknown keywords, unused names, "
        "routes and list items it cannot resolve) with a FILE:LINE:COLUMN warning each, "
        "instead of refusing the config",
    )


def run(args: argparse.Namespace) -> int:
    """Run the subcommand ``add_commands`` parsed; print errors; return the exit code."""
    try:
        result: int = args.config_run(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem.located()}", file=sys.stderr)
        count = len(exc.problems)
        log.error("config %s: %d problem%s, nothing written", exc.file, count, "s"[: count - 1])
        return 1
    return result


def run_load(args: argparse.Namespace) -> int:
    """``load FILE --db PATH``: like ``m2sh load``, but nothing is written when it is invalid."""
    config = _checked(args)
    write_config(args.db, config, how=args.file)
    print(f"loaded {args.file} into {args.db}: {summarize(config)}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """``check FILE``: report every problem, write nothing."""
    config = _checked(args)
    print(f"{args.file}: ok ({summarize(config)})")
    return 0


def _checked(args: argparse.Namespace) -> Config:
    """The config of ``args.file``, its warnings printed to stderr."""
    built = check_file(args.file, lenient=args.lenient)
    for warning in built.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return built.config


def run_show(args: argparse.Namespace) -> int:
    """``show --db PATH [--json]``: servers, hosts, routes and handlers."""
    config = load_any(args.db)
    if args.json:
        print(json.dumps(config_to_json(config), indent=2))
    else:
        print(format_config(config))
    return 0


def summarize(config: Config) -> str:
    """``1 server, 2 hosts, 5 routes, 2 handlers, 1 dir, 1 proxy``."""
    hosts = [host for server in config.servers for host in server.hosts]
    targets = {id(t): t for host in hosts for t in host.routes.values()}.values()
    counts = [
        (len(config.servers), "server"),
        (len(hosts), "host"),
        (sum(len(host.routes) for host in hosts), "route"),
        (sum(isinstance(t, Handler) for t in targets), "handler"),
        (sum(isinstance(t, Dir) for t in targets), "dir"),
        (sum(isinstance(t, Proxy) for t in targets), "prox"),
    ]
    return ", ".join(_plural(n, word) for n, word in counts)


def _plural(count: int, word: str) -> str:
    if word == "prox":
        return f"{count} prox{'y' if count == 1 else 'ies'}"
    return f"{count} {word}{'' if count == 1 else 's'}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mongrel2_conf COMMAND ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m mongrel2_conf", description="Mongrel2 config files and databases."
    )
    add_commands(parser)
    return run(parser.parse_args(argv))

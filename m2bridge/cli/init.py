"""``m2bridge init [DIR]``: write a Mongrel2 config, a stack file and a hello app that run at once.

    m2bridge init mysite --port 6767 && cd mysite
    m2bridge up stack.toml            # Mongrel2 + relay + 2 workers
    curl http://127.0.0.1:6767/       # Hello, world!

Existing files are never overwritten without ``--force``. Mongrel2's handler endpoints take
loopback ports that are free when ``init`` runs; its chroot is DIR (run/, logs/, tmp/ in it).
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 6767
CONF = "mongrel2.conf"
STACK = "stack.toml"
APP = "app.py"
#: Directories Mongrel2 needs in its chroot (the supervisor makes them too, at start).
CHROOT_DIRS = ("run", "logs", "tmp")
#: The relay's socket, relative to DIR (every watcher runs there).
RELAY = "ipc://run/relay.ipc"
#: Longest stack name taken from DIR's name (the control socket's path must stay short).
MAX_NAME = 32


@dataclass(frozen=True)
class Layout:
    """What ``init`` writes: the stack's name and the ports of Mongrel2 and its handler."""

    name: str
    port: int
    send_port: int
    recv_port: int
    server_uuid: str
    send_ident: str


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Create the ``init`` parser."""
    parser = subparsers.add_parser(
        "init",
        help="write a Mongrel2 config, a stack file and a hello app into DIR",
        description="Write mongrel2.conf, stack.toml and app.py into DIR, ready for "
        "`m2bridge up stack.toml`.",
    )
    parser.add_argument("dir", nargs="?", default=".", metavar="DIR", help="default: .")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"Mongrel2's HTTP port on {HOST}"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(run=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def stack_name(directory: Path, port: int) -> str:
    """A stack name from DIR's name and the port (its control socket's directory)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", directory.resolve().name).strip("-")
    return f"{slug[:MAX_NAME] or 'm2bridge'}-{port}"


def free_port(avoid: set[int], tries: int = 100) -> int:
    """A loopback TCP port free now, not in ``avoid``.

    Raises:
        OSError: none found in ``tries`` attempts.
    """
    for _ in range(tries):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError(f"no free loopback port in {tries} attempts")


def make_layout(directory: Path, port: int) -> Layout:
    send_port = free_port({port})
    recv_port = free_port({port, send_port})
    return Layout(
        stack_name(directory, port),
        port,
        send_port,
        recv_port,
        str(uuid.uuid4()),
        str(uuid.uuid4()),
    )


def conf_text(layout: Layout) -> str:
    """The Mongrel2 config: one server on HOST:port, ``/`` routed to one handler."""
    return f"""\
# Mongrel2 on {HOST}:{layout.port}; m2bridge's relay reads the handler's send_spec, the
# workers answer on its recv_spec. Written by `m2bridge init`.
# Check it: m2bridge config check {CONF}

app = Handler(
    send_spec="tcp://{HOST}:{layout.send_port}",
    send_ident="{layout.send_ident}",
    recv_spec="tcp://{HOST}:{layout.recv_port}",
    recv_ident="",
    protocol="tnetstring"
)

main = Server(
    uuid="{layout.server_uuid}",
    name="main",
    bind_addr="{HOST}",
    port={layout.port},
    chroot="./",
    access_log="/logs/access.log",
    error_log="/logs/error.log",
    pid_file="/run/mongrel2.pid",
    default_host="localhost",
    hosts=[
        Host(name="localhost", routes={{"/": app}})
    ]
)

settings = {{
    "server.daemonize": 0,
    "zeromq.threads": 1,
    "upload.temp_store": "/tmp/upload.XXXXXX",
    "limits.content_length": 2097152
}}

servers = [main]
"""


def stack_text(layout: Layout) -> str:
    """The stack file: Mongrel2, the relay and two workers serving ``app:app``."""
    handler = f"--config {CONF} --handler /"
    return f"""\
# Written by `m2bridge init`: Mongrel2 + relay + 2 workers serving app.py on
# http://{HOST}:{layout.port}/ (from this directory):
#
#   m2bridge up {STACK}                       # foreground; Ctrl-C drains and stops everything
#   m2bridge ctl -s {STACK} stats             # or: incr hello, decr hello, reload hello, quit

[stack]
name = "{layout.name}"

[watchers.mongrel2]
type = "mongrel2"
config = "{CONF}"
server = "main"
graceful_timeout = 5

[watchers.relay]
cmd = "$(python) -m m2bridge relay {handler} --bind {RELAY}"
priority = 5
graceful_timeout = 5

[watchers.hello]
cmd = "$(python) -m m2bridge serve app:app {handler} --relay {RELAY}"
numprocesses = 2
readiness = "stats"
graceful_timeout = 10
"""


APP_TEXT = '''\
"""A WSGI app served by m2bridge: edit it, then `m2bridge ctl -s stack.toml reload hello`."""


def app(environ, start_response):
    body = b"Hello, world!\\n"
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
'''


def files_for(layout: Layout) -> dict[str, str]:
    """Every file ``init`` writes, by name, with its text."""
    return {CONF: conf_text(layout), STACK: stack_text(layout), APP: APP_TEXT}


def next_steps(directory: Path, port: int) -> list[str]:
    """The commands to run next, from the current directory."""
    steps = [] if directory.resolve() == Path.cwd().resolve() else [f"cd {directory}"]
    return [
        *steps,
        f"m2bridge up {STACK}",
        f"curl http://{HOST}:{port}/",
        f"m2bridge ctl -s {STACK} stats",
        f"m2bridge ctl -s {STACK} quit",
    ]


def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    existing = [name for name in (CONF, STACK, APP) if (directory / name).exists()]
    if existing and not args.force:
        paths = ", ".join(str(directory / name) for name in existing)
        log.error("init: refusing to overwrite %s", paths)
        print(f"m2bridge init: {paths} already exist(s); --force overwrites", file=sys.stderr)
        return 1
    try:
        layout = make_layout(directory, args.port)
        files = files_for(layout)
        write(directory, files)
    except OSError as exc:
        log.error("init: %s", exc)
        print(f"m2bridge init: {exc}", file=sys.stderr)
        return 1
    for name in files:
        print(f"wrote {directory / name}")
    print(
        f"Mongrel2 on http://{HOST}:{args.port}/, handler on ports "
        f"{layout.send_port} and {layout.recv_port}. Next:"
    )
    for step in next_steps(directory, args.port):
        print(f"  {step}")
    return 0


def write(directory: Path, files: dict[str, str]) -> None:
    """DIR, Mongrel2's chroot directories in it, and the files."""
    for name in CHROOT_DIRS:
        (directory / name).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)

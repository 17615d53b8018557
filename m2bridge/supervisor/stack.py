"""The stack file (TOML) as frozen dataclasses; every error names the offending key.

```toml
[stack]                      # optional: name (default: file stem), rundir
[control]                    # endpoint (default ipc://<rundir>/m2bridge.ctl), token, token_file
[sockets.web]                # host + port, or path; backlog, reuseport
[watchers.hello]             # cmd (+ args), numprocesses, env, working_dir, use_sockets, ...
[watchers.hello.flapping]    # attempts, window, retry_in, max_delay, max_retries
[watchers.web]               # type = "mongrel2": config = "mongrel2.conf", server = "main"
[metrics]                    # address = "127.0.0.1:9100" (/metrics, /healthz), token, statsd
[web]                        # address = "127.0.0.1:9180": runs `m2bridge web` as watcher "web"
```
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import os
import shlex
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from m2bridge import environment
from m2bridge.errors import ConfigError
from m2bridge.supervisor import template
from m2bridge.supervisor.plan import FlappingPolicy
from m2bridge.supervisor.schema import Table
from m2bridge.supervisor.topology import check_topology

CONTROL_SOCKET = "m2bridge.ctl"
#: Where the relay of ``serve --workers N`` binds, in the supervisor's run directory.
RELAY_SOCKET = "relay.ipc"
#: ``serve --workers N``: the relay starts after Mongrel2 (10) and before the workers (0).
RELAY_PRIORITY = 5
SIGNAL_NAMES = (
    "TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2", "WINCH", "ABRT", "ALRM", "CONT",
    "STOP", "TSTP", "TTIN", "TTOU",
)  # fmt: skip
READINESS = ("stats", "delay")
#: ``serve --workers``: seconds past a worker's own graceful timeout before it is SIGKILLed.
KILL_MARGIN = 2.0
MONGREL2_PRIORITY = 10
#: ``[web]``: the console stops first, starts last.
WEB_PRIORITY = -10
WEB_ADDRESS = "127.0.0.1:9180"


@dataclass(frozen=True)
class ControlSpec:
    """Where the control socket listens; ``token`` is required for a ``tcp://`` endpoint."""

    endpoint: str
    token: str | None = None


@dataclass(frozen=True)
class MetricsSpec:
    """Where the supervisor serves ``/metrics`` and ``/healthz`` (``address`` HOST:PORT; None:
    nowhere), the bearer ``token`` it then requires, and an optional statsd push."""

    address: str | None = None
    token: str | None = None
    statsd: str | None = None
    statsd_prefix: str = "m2bridge"
    statsd_interval: float = 10.0


@dataclass(frozen=True)
class SocketSpec:
    """A listening socket the supervisor binds once and passes to watchers by fd."""

    name: str
    host: str | None = None
    port: int | None = None
    path: str | None = None
    backlog: int = 128
    reuseport: bool = False


@dataclass(frozen=True)
class Mongrel2Spec:
    """The Mongrel2 config (``.conf`` or ``.sqlite``) and the server (name or uuid) to run."""

    config: str
    server: str | None = None


@dataclass(frozen=True)
class WatcherSpec:
    """One group of identical processes (``numprocesses`` copies of ``cmd``)."""

    name: str
    cmd: tuple[str, ...]
    numprocesses: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    copy_env: bool = True
    working_dir: str = "."  # a mongrel2 watcher's chroot is relative to it
    use_sockets: tuple[str, ...] = ()
    stop_signal: str = "TERM"
    graceful_timeout: float = 30.0
    warmup_delay: float = 0.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    max_rss: int = 0  # MiB; a ready process using more is replaced (rolling, so staggered)
    #: seconds a ready process that publishes a heartbeat (an m2bridge worker) may miss it
    #: before it is killed as hung and replaced in its slot; 0: never
    hang_timeout: float = 30.0
    respawn: bool = True
    readiness: str = "delay"
    ready_timeout: float = 30.0
    priority: int = 0
    flapping: FlappingPolicy = field(default_factory=FlappingPolicy)
    mongrel2: Mongrel2Spec | None = None
    #: the stack's ``mongrel2`` watchers (on every other watcher): the supervisor tells its
    #: processes where those servers run (``M2BRIDGE_MONGREL2_CHROOTS``).
    mongrel2_peers: tuple[WatcherSpec, ...] = ()


@dataclass(frozen=True)
class StackConfig:
    """A whole stack: its runtime directory, control endpoint, sockets and watchers."""

    name: str
    rundir: str
    control: ControlSpec
    sockets: Mapping[str, SocketSpec] = field(default_factory=dict)
    watchers: Mapping[str, WatcherSpec] = field(default_factory=dict)
    metrics: MetricsSpec = field(default_factory=MetricsSpec)


def runtime_base() -> Path:
    """``$XDG_RUNTIME_DIR/m2bridge``, else ``/tmp/m2bridge-<uid>``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg) / "m2bridge" if xdg else Path(f"/tmp/m2bridge-{os.getuid()}")


def default_rundir(name: str) -> str:
    return str(runtime_base() / name)


def default_endpoint(rundir: str) -> str:
    return f"ipc://{Path(rundir) / CONTROL_SOCKET}"


def load_stack(path: str | os.PathLike[str]) -> StackConfig:
    """Read and check a stack file.

    Raises:
        ConfigError: the file is missing, not TOML, or a key is wrong (the message names it).
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read stack file {file}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    try:
        return parse_stack(data, file.resolve().parent, file.stem)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc


def parse_stack(data: Mapping[str, object], base: Path, default_name: str) -> StackConfig:
    """Build a StackConfig from parsed TOML; relative paths are taken from ``base``."""
    root = Table(data, "")
    stack = root.sub("stack")
    name = stack.string("name", default_name) or default_name
    rundir = _path(base, stack.string("rundir")) or default_rundir(name)
    stack.check_unknown()
    control = _parse_control(root.sub("control"), base, rundir)
    socket_tables = root.sub("sockets")
    sockets = {key: _parse_socket(key, socket_tables.sub(key), base) for key in socket_tables.data}
    watcher_tables = root.sub("watchers")
    watchers = {
        key: _parse_watcher(key, watcher_tables.sub(key), base, sockets, rundir)
        for key in watcher_tables.data
    }
    metrics = _parse_metrics(root.sub("metrics"), base)
    web = _parse_web(root.sub("web"), base, control, watchers) if root.has("web") else None
    root.check_unknown()
    if not watchers:
        raise ConfigError("watchers: the stack defines no watcher")
    if web is not None:
        watchers[web.name] = web
    for spec in watchers.values():
        check_topology(spec)
    return StackConfig(name, rundir, control, sockets, _with_mongrel2_peers(watchers), metrics)


def _with_mongrel2_peers(watchers: dict[str, WatcherSpec]) -> dict[str, WatcherSpec]:
    peers = tuple(spec for spec in watchers.values() if spec.mongrel2 is not None)
    if not peers:
        return watchers
    return {
        key: spec if spec.mongrel2 is not None else replace(spec, mongrel2_peers=peers)
        for key, spec in watchers.items()
    }


def _path(base: Path, value: str | None) -> str | None:
    return None if value is None else str((base / os.path.expanduser(value)).resolve())


def _parse_control(table: Table, base: Path, rundir: str) -> ControlSpec:
    endpoint = table.string("endpoint") or default_endpoint(rundir)
    token = table.string("token")
    token_file = _path(base, table.string("token_file"))
    table.check_unknown()
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"control.token_file: cannot read {token_file}: {exc.strerror}"
            ) from exc
    if not endpoint.startswith(("ipc://", "tcp://")):
        raise ConfigError(f"control.endpoint: expected ipc:// or tcp://, got {endpoint!r}")
    if endpoint.startswith("tcp://") and not token:
        raise ConfigError("control.token: a tcp:// control endpoint needs a token (or token_file)")
    return ControlSpec(endpoint, token)


def _parse_metrics(table: Table, base: Path) -> MetricsSpec:
    address = table.string("address")
    token = _token(table, base)
    statsd = table.string("statsd")
    spec = MetricsSpec(
        address=None if address is None else check_address(address, table.key("address")),
        token=token,
        statsd=None if statsd is None else check_address(statsd, table.key("statsd")),
        statsd_prefix=table.string("statsd_prefix", "m2bridge") or "m2bridge",
        statsd_interval=table.number("statsd_interval", 10.0, minimum=0.1),
    )
    table.check_unknown()
    return spec


def _parse_web(
    table: Table, base: Path, control: ControlSpec, watchers: Mapping[str, WatcherSpec]
) -> WatcherSpec:
    """``[web]`` (even empty): the console as a watcher running ``m2bridge web``."""
    address = check_address(
        table.string("address", WEB_ADDRESS) or WEB_ADDRESS, table.key("address")
    )
    token = _token(table, base)
    name = table.string("watcher", "web") or "web"
    table.check_unknown()
    if name in watchers:
        raise ConfigError(f"{table.key('watcher')}: a watcher named {name!r} exists already")
    env = {environment.WEB_TOKEN: token} if token else {}
    if control.token:
        env[environment.TOKEN] = control.token
    return WatcherSpec(
        name=name,
        cmd=(
            "$(python)",
            "-m",
            "m2bridge",
            "web",
            "--endpoint",
            control.endpoint,
            "--bind",
            address,
        ),
        env=env,
        working_dir=str(base),
        graceful_timeout=5.0,
        priority=WEB_PRIORITY,
    )


def _token(table: Table, base: Path) -> str | None:
    """``token``, or the content of ``token_file``."""
    token = table.string("token")
    token_file = _path(base, table.string("token_file"))
    if token_file is None:
        return token
    try:
        return Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{table.key('token_file')}: cannot read {token_file}: {exc.strerror}"
        ) from exc


def check_address(value: str, where: str) -> str:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``), returned as given.

    Raises:
        ConfigError: not HOST:PORT with a port in 0..65535 (0: any free port).
    """
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{where}: expected HOST:PORT, got {value!r}")
    return value


def _parse_socket(name: str, table: Table, base: Path) -> SocketSpec:
    host = table.string("host")
    port = table.integer("port", 0) if table.has("port") else None
    path = _path(base, table.string("path"))
    backlog = table.integer("backlog", 128, minimum=1)
    reuseport = table.boolean("reuseport", False)
    table.check_unknown()
    if (path is None) == (port is None) or (path is not None and host is not None):
        raise ConfigError(f"{table.path}: give either host and port, or path")
    if port is not None and port > 65535:
        raise ConfigError(f"{table.key('port')}: expected a port number <= 65535, got {port}")
    if port is not None and host is None:
        host = "127.0.0.1"
    return SocketSpec(name, host, port, path, backlog, reuseport)


def _parse_watcher(
    name: str, table: Table, base: Path, sockets: Mapping[str, SocketSpec], rundir: str
) -> WatcherSpec:
    kind = table.choice("type", ("command", "mongrel2"), "command")
    mongrel2 = _parse_mongrel2(table, base) if kind == "mongrel2" else None
    cmd = () if mongrel2 else _parse_cmd(table)
    env = table.mapping("env")
    spec = WatcherSpec(
        name=name,
        cmd=cmd,
        numprocesses=table.integer("numprocesses", 1),
        env=env,
        copy_env=table.boolean("copy_env", True),
        working_dir=_path(base, table.string("working_dir"))
        or str(Path(rundir, name) if mongrel2 else base),
        use_sockets=_parse_use_sockets(table, sockets),
        stop_signal=_parse_signal(table),
        graceful_timeout=table.number("graceful_timeout", 30.0),
        warmup_delay=table.number("warmup_delay", 0.0),
        max_requests=table.integer("max_requests", 0),
        max_requests_jitter=table.integer("max_requests_jitter", 0),
        max_rss=table.integer("max_rss", 0),
        hang_timeout=table.number("hang_timeout", 30.0),
        respawn=table.boolean("respawn", True),
        readiness=table.choice("readiness", READINESS, "delay"),
        ready_timeout=table.number("ready_timeout", 30.0),
        priority=table.integer("priority", MONGREL2_PRIORITY if mongrel2 else 0, minimum=-1000),
        flapping=_parse_flapping(table.sub("flapping")),
        mongrel2=mongrel2,
    )
    table.check_unknown()
    if mongrel2 and spec.numprocesses > 1:
        raise ConfigError(f"{table.key('numprocesses')}: a mongrel2 watcher runs one process")
    _check_references(spec, table, sockets)
    return spec


def _parse_cmd(table: Table) -> tuple[str, ...]:
    raw = table.get("cmd")
    if raw is None:
        raise ConfigError(f"{table.key('cmd')}: missing (the command to run)")
    cmd = tuple(shlex.split(raw)) if isinstance(raw, str) else table.strings("cmd")
    if not cmd:
        raise ConfigError(f"{table.key('cmd')}: empty command")
    return cmd + table.strings("args")


def _parse_mongrel2(table: Table, base: Path) -> Mongrel2Spec:
    config = _path(base, table.string("config"))
    if config is None:
        raise ConfigError(f"{table.key('config')}: missing (the Mongrel2 .conf or .sqlite file)")
    if not config.endswith((".conf", ".sqlite", ".db")):
        raise ConfigError(
            f"{table.key('config')}: expected a .conf or .sqlite file, got {config!r}"
        )
    if not Path(config).is_file():
        raise ConfigError(f"{table.key('config')}: no such file {config}")
    return Mongrel2Spec(config, table.string("server"))


def _parse_use_sockets(table: Table, sockets: Mapping[str, SocketSpec]) -> tuple[str, ...]:
    value = table.get("use_sockets")
    if isinstance(value, bool):
        return tuple(sockets) if value else ()
    names = table.strings("use_sockets")
    for socket_name in names:
        if socket_name not in sockets:
            raise ConfigError(f"{table.key('use_sockets')}: no socket named {socket_name!r}")
    return names


def _parse_signal(table: Table) -> str:
    name = (table.string("stop_signal", "TERM") or "TERM").upper().removeprefix("SIG")
    if name not in SIGNAL_NAMES:
        raise ConfigError(f"{table.key('stop_signal')}: unknown signal {name!r}")
    return name


def _parse_flapping(table: Table) -> FlappingPolicy:
    default = FlappingPolicy()
    policy = FlappingPolicy(
        attempts=table.integer("attempts", default.attempts, minimum=1),
        window=table.number("window", default.window),
        retry_in=table.number("retry_in", default.retry_in),
        max_delay=table.number("max_delay", default.max_delay),
        max_retries=table.integer("max_retries", default.max_retries, minimum=-1),
    )
    table.check_unknown()
    return policy


def _check_references(spec: WatcherSpec, table: Table, sockets: Mapping[str, SocketSpec]) -> None:
    """Resolve every ``$(...)`` once at load time so typos fail before anything starts."""
    env = {**(os.environ if spec.copy_env else {}), **spec.env}
    known = {"wid", "python", "name", *template.env_values(env)}
    known |= {f"sockets.{key}" for key in sockets}
    for ref in sorted(template.references([*spec.cmd, *spec.env.values()])):
        if ref not in known:
            where = table.key("env" if any(f"$({ref})" in v for v in spec.env.values()) else "cmd")
            raise ConfigError(f"{where}: unknown substitution $({ref})")


def substitutions(spec: WatcherSpec, wid: int, socket_fds: Mapping[str, int]) -> dict[str, str]:
    """The values of every ``$(...)`` for one process of ``spec``."""
    env = {**(os.environ if spec.copy_env else {}), **spec.env}
    values = {"wid": str(wid), "python": sys.executable, "name": spec.name}
    values.update(template.env_values(env))
    values.update({f"sockets.{key}": str(fd) for key, fd in socket_fds.items()})
    return values


def relay_endpoint(name: str) -> str:
    """Where the relay of the ``serve --workers N`` supervisor ``name`` binds."""
    return f"ipc://{Path(default_rundir(name)) / RELAY_SOCKET}"


def worker_stack(
    argv: list[str],
    numprocesses: int,
    graceful_timeout: float,
    name: str,
    relay_argv: list[str] | None = None,
) -> StackConfig:
    """The stack ``m2bridge serve --workers N`` runs: one watcher of ``argv`` copies, behind
    a ``relay`` watcher of ``relay_argv`` if given (started before them, stopped after).

    Each process is ready once it has published its stats file (a worker does that when its
    sockets are connected), so a reload never stops an old worker before a new one serves. A
    stopping worker drains for ``graceful_timeout`` itself; it is killed ``KILL_MARGIN`` later.

    Raises:
        ConfigError: an empty command, or several workers straight on Mongrel2.
    """
    if not argv:
        raise ConfigError("serve: empty worker command")
    rundir = default_rundir(name)
    watchers: dict[str, WatcherSpec] = {}
    if relay_argv:
        watchers["relay"] = WatcherSpec(
            name="relay",
            cmd=tuple(relay_argv),
            working_dir=os.getcwd(),
            graceful_timeout=5.0,
            priority=RELAY_PRIORITY,
        )
    watcher = WatcherSpec(
        name=name,
        cmd=tuple(argv),
        numprocesses=numprocesses,
        working_dir=os.getcwd(),
        graceful_timeout=graceful_timeout + KILL_MARGIN,
        readiness="stats",
        ready_timeout=10.0,
    )
    check_topology(watcher)
    watchers[name] = watcher
    return StackConfig(name, rundir, ControlSpec(default_endpoint(rundir)), {}, watchers)

"""``m2bridge serve`` option parsing: flags -> WorkerConfig, usage errors, the child command."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Any

import pytest

from m2bridge.cli import make_parser
from m2bridge.cli.serve import (
    UsageError,
    build_config,
    child_argv,
    reload_child_argv,
    supervisor_name,
)
from m2bridge.config import OPTIONS, WorkerConfig, endpoint
from m2bridge.environment import STATS_FILE as STATS_ENV
from m2bridge.environment import WID as WID_ENV
from m2bridge.errors import ConfigError
from m2bridge.loader import prepare
from m2bridge.supervisor.stack import default_rundir, relay_endpoint


def parse(*argv: str) -> argparse.Namespace:
    return make_parser().parse_args(["serve", *argv])


def config_of(*argv: str) -> WorkerConfig:
    return build_config(parse(*argv))


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_defaults_match_worker_config(monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    monkeypatch.delenv(WID_ENV, raising=False)
    assert config_of("handlers.echo:app") == WorkerConfig(app="handlers.echo:app")


def test_every_flag_reaches_its_config_field(monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    config = config_of(
        "pkg.mod:app",
        "--send-spec", "tcp://127.0.0.1:7001", "--recv-spec", "tcp://127.0.0.1:7002",
        "--send-spec", "ipc:///tmp/m2-send", "--recv-spec", "ipc:///tmp/m2-recv",
        "--sender-id", "my-worker-1", "--concurrency", "50", "--graceful-timeout", "2.5",
        "--timeout", "9", "--max-in-flight", "40", "--max-requests", "100",
        "--max-requests-jitter", "10",
        "--access-log", "-", "--log-level", "DEBUG", "--script-name", "route",
        "--m2-chroot", "/srv/m2", "--upload-temp-store", "/tmp/upload.XXXXXX",
        "--cancel-grace", "0.5", "--worker-slot", "3", "--stats-file", "/run/s.json",
        "--validate",
    )  # fmt: skip
    assert config == WorkerConfig(
        app="pkg.mod:app",
        send_specs=("tcp://127.0.0.1:7001", "ipc:///tmp/m2-send"),
        recv_specs=("tcp://127.0.0.1:7002", "ipc:///tmp/m2-recv"),
        sender_id="my-worker-1",
        concurrency=50,
        graceful_timeout=2.5,
        timeout=9.0,
        max_in_flight=40,
        max_requests=100,
        max_requests_jitter=10,
        access_log="-",
        log_level="debug",
        script_name="route",
        m2_chroot="/srv/m2",
        upload_temp_store="/tmp/upload.XXXXXX",
        cancel_grace=0.5,
        worker_slot=3,
        stats_file="/run/s.json",
        validate=True,
    )


def test_worker_slot_defaults_to_the_slot_the_supervisor_sets(monkeypatch):
    monkeypatch.setenv(WID_ENV, "2")
    assert config_of("a:b").worker_slot == 2
    assert config_of("a:b", "--worker-slot", "5").worker_slot == 5  # the flag wins
    monkeypatch.setenv(WID_ENV, "")
    assert config_of("a:b").worker_slot is None


@pytest.mark.parametrize("value", ["-1", "two", "1.5", "1234567890", "\u0661"])
def test_a_bad_supervisor_slot_is_a_config_error(monkeypatch, value):
    monkeypatch.setenv(WID_ENV, value)
    with pytest.raises(ConfigError, match=WID_ENV):
        config_of("a:b")


def test_stats_file_defaults_to_the_supervisors_environment_variable(monkeypatch):
    monkeypatch.setenv(STATS_ENV, "/run/m2bridge/w.3.json")
    assert config_of("a:b").stats_file == "/run/m2bridge/w.3.json"


@pytest.mark.parametrize(
    "spec",
    ["tcp://127.0.0.1:9997", "tcp://localhost:1", "tcp://[::1]:65535", "tcp://*:9000",
     "ipc:///tmp/x.ipc", "ipc://run/control"],
)  # fmt: skip
def test_valid_endpoints_are_accepted(spec):
    assert endpoint(spec) == spec


@pytest.mark.parametrize(
    "spec",
    ["tcp://127.0.0.1", "tcp://127.0.0.1:0", "tcp://127.0.0.1:70000", "tcp://:9997",
     "127.0.0.1:9997", "ipc://", "udp://127.0.0.1:1", "tcp://a b:1", "tcp://host:12x"],
)  # fmt: skip
def test_malformed_endpoints_are_usage_errors(capsys, spec):
    err = usage_error(capsys, "a:b", "--send-spec", spec, "--recv-spec", "tcp://127.0.0.1:2")
    assert "invalid endpoint" in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--concurrency", "0"), ("--workers", "-1"), ("--timeout", "-2"), ("--timeout", "nan"),
     ("--graceful-timeout", "soon"), ("--max-requests", "1.5"), ("--sender-id", "bad_uuid"),
     ("--log-level", "loud"), ("--max-in-flight", "-1"), ("--fd", "sd"),
     ("--env", "NOEQUALS"), ("--env", "=x"), ("--env", "1A=x"), ("--env", "A=\0"),
     ("--log-format", "xml"), ("--access-log-format", "%(zz)s"),
     ("--access-log-format", "%(h)d")],
)  # fmt: skip
def test_bad_option_values_are_usage_errors(capsys, flag, value):
    err = usage_error(capsys, "a:b", flag, value)
    assert flag in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--send-spec", "tcp://127.0.0.1:1"], "as many --send-spec as --recv-spec"),
        (["--config", "m2.conf"], "--config and --handler go together"),
        (["--config", "m2.conf", "--handler", "/", "--send-spec", "tcp://h:1",
          "--recv-spec", "tcp://h:2"], "exclude each other"),
        (["--fd", "3", "--bind", "127.0.0.1:80"], "--fd and --bind"),
        (["--bind", "127.0.0.1:8000", "--workers", "2"], "m2bridge up"),
        (["--script-name", "app"], "--script-name"),
        (["--fd", "3", "--fd-name", "web"], "--fd-name names a socket of --fd systemd"),
        (["--fd-name", "web"], "--fd-name"),
        (["--reload", "--workers", "2"], "m2bridge ctl reload"),
    ],
)  # fmt: skip
def test_contradicting_options_are_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        config_of("a:b", *argv)


def test_child_command_reproduces_the_config_in_each_worker(monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    config = config_of(
        "pkg.mod:app", "--workers", "4",
        "--send-spec", "tcp://127.0.0.1:7001", "--recv-spec", "tcp://127.0.0.1:7002",
        "--concurrency", "10", "--timeout", "3", "--script-name", "/app", "--validate",
        "--max-in-flight", "8",
        "--access-log", "/var/log/a.log", "--upload-temp-store", "/tmp/up.XXXXXX",
    )  # fmt: skip
    argv = child_argv(config)
    assert argv[1:5] == ["-m", "m2bridge", "serve", "pkg.mod:app"]
    assert argv[-4:] == ["--workers", "1", "--worker-slot", "$(wid)"]
    child = [item.replace("$(wid)", "2") for item in argv[5:]]
    assert config_of("pkg.mod:app", *child) == WorkerConfig(
        **{**config.__dict__, "workers": 1, "worker_slot": 2}
    )


def test_supervisor_name_is_a_safe_path_component():
    assert supervisor_name("handlers.echo:app") == "serve-handlers-echo-app"
    assert supervisor_name("../../x:y") == "serve-x-y"


M2_CONF = """
main = Server(
    uuid="srv-1", access_log="/logs/access.log", error_log="/logs/error.log",
    chroot="./", pid_file="/run/mongrel2.pid", default_host="localhost", name="main",
    port=6767,
    hosts=[Host(name="localhost", routes={
        '/app/': Handler(send_spec='tcp://127.0.0.1:8801', send_ident='aaaa-1111',
                         recv_spec='tcp://127.0.0.1:8802', recv_ident='')
    })]
)
settings = {"upload.temp_store": "/tmp/upload.XXXXXX"}
servers = [main]
"""


def test_config_and_handler_read_the_endpoints_from_a_mongrel2_config(tmp_path, monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(M2_CONF)
    config = config_of("a:b", "--config", str(conf), "--handler", "/app/")
    assert config.send_specs == ("tcp://127.0.0.1:8801",)
    assert config.recv_specs == ("tcp://127.0.0.1:8802",)
    assert config.upload_temp_store == "/tmp/upload.XXXXXX"
    assert config.m2_chroot == "./"
    assert config.sender_id is None


def test_unknown_handler_in_a_config_is_a_one_line_error(tmp_path, capsys):
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(M2_CONF)
    args = parse("a:b", "--config", str(conf), "--handler", "/nope/")
    assert args.run(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("m2bridge serve: error: ")
    assert "/nope/" in err
    assert err.count("\n") == 1


def two_servers_conf(chroot_b: str) -> str:
    def server(name: str, port: int, route: str, send: int, recv: int, chroot: str) -> str:
        return f"""
{name} = Server(
    uuid="{name}-uuid", access_log="/logs/access.log", error_log="/logs/error.log",
    chroot="{chroot}", pid_file="/run/mongrel2.pid", default_host="localhost", name="{name}",
    port={port},
    hosts=[Host(name="localhost", routes={{
        '{route}': Handler(send_spec='tcp://127.0.0.1:{send}', send_ident='{name}-ident',
                           recv_spec='tcp://127.0.0.1:{recv}', recv_ident='')
    }})]
)
"""

    return (
        server("alpha", 6767, "/app/", 8801, 8802, "./")
        + server("beta", 6768, "/app/", 8803, 8804, chroot_b)
        + "servers = [alpha, beta]\n"
    )


def test_handlers_of_several_servers_in_one_config_become_several_channels(tmp_path, monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(two_servers_conf("./"))
    config = config_of("a:b", "--config", str(conf), "--handler", "/app/@alpha",
                       "--handler", "/app/@beta-uuid")  # fmt: skip
    assert config.send_specs == ("tcp://127.0.0.1:8801", "tcp://127.0.0.1:8803")
    assert config.recv_specs == ("tcp://127.0.0.1:8802", "tcp://127.0.0.1:8804")
    assert config.sender_id is None
    argv = child_argv(replace(config, workers=2))
    assert argv.count("--send-spec") == 2


def test_handlers_of_several_servers_take_one_relay_each_in_order(tmp_path, monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(two_servers_conf("./"))
    handlers = ("--config", str(conf), "--handler", "/app/@alpha", "--handler", "/app/@beta")
    config = config_of("a:b", *handlers, "--relay", "tcp://h:1", "--relay", "tcp://h:2")
    assert config.relay == ("tcp://h:1", "tcp://h:2")
    assert config.recv_specs == ("tcp://127.0.0.1:8802", "tcp://127.0.0.1:8804")
    child = config_of(*child_argv(replace(config, workers=2))[4:-4])
    assert (child.relay, child.recv_specs) == (config.relay, config.recv_specs)
    with pytest.raises(UsageError, match="one per --recv-spec"):
        config_of("a:b", *handlers, *[w for n in (1, 2, 3) for w in ("--relay", f"tcp://h:{n}")])


def test_handlers_of_servers_with_different_chroots_are_refused(tmp_path, capsys):
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(two_servers_conf("/srv/other/"))
    args = parse(
        "a:b", "--config", str(conf), "--handler", "/app/@alpha", "--handler", "/app/@beta"
    )
    assert args.run(args) == 1
    err = capsys.readouterr().err
    assert "differ in chroot" in err
    assert err.count("\n") == 1


# ------------------------------------------------------------- every option, both ways

#: Per option (``config.OPTIONS``): command-line words giving it a non-default value, and
#: that value in the ``WorkerConfig``. ``{conf}`` stands for a Mongrel2 config file.
SAMPLES: dict[str, tuple[list[str], object]] = {
    "send_specs": (["--send-spec", "tcp://h:7001", "--recv-spec", "tcp://h:7002"],
                   ("tcp://h:7001",)),
    "recv_specs": (["--send-spec", "tcp://h:7001", "--recv-spec", "tcp://h:7002"],
                   ("tcp://h:7002",)),
    "sender_id": (["--sender-id", "my-worker-1"], "my-worker-1"),
    "config": (["--config", "{conf}", "--handler", "/app/"], "{conf}"),
    "handler": (["--config", "{conf}", "--handler", "/app/"], ("/app/",)),
    "relay": (["--relay", "ipc:///tmp/r"], ("ipc:///tmp/r",)),
    "m2_chroot": (["--m2-chroot", "/srv/m2"], "/srv/m2"),
    "upload_temp_store": (["--upload-temp-store", "/tmp/up.XXXXXX"], "/tmp/up.XXXXXX"),
    "fd": (["--fd", "3"], 3),
    "bind": (["--bind", "127.0.0.1:8000"], "127.0.0.1:8000"),
    "workers": (["--workers", "3"], 3),
    "concurrency": (["--concurrency", "7"], 7),
    "graceful_timeout": (["--graceful-timeout", "2.5"], 2.5),
    "max_requests": (["--max-requests", "100"], 100),
    "max_requests_jitter": (["--max-requests-jitter", "10"], 10),
    "worker_slot": (["--worker-slot", "4"], 4),
    "stats_file": (["--stats-file", "/run/s.json"], "/run/s.json"),
    "log_level": (["--log-level", "DEBUG"], "debug"),
    "access_log": (["--access-log", "/var/log/a.log"], "/var/log/a.log"),
    "script_name": (["--script-name", "/app"], "/app"),
    "timeout": (["--timeout", "9"], 9.0),
    "max_in_flight": (["--max-in-flight", "40"], 40),
    "cancel_grace": (["--cancel-grace", "0.5"], 0.5),
    "validate": (["--validate"], True),
    "fd_name": (["--fd", "systemd", "--fd-name", "web"], "web"),
    "reload": (["--reload"], True),
    "log_format": (["--log-format", "json"], "json"),
    "access_log_format": (["--access-log-format", "%(h)s %(Q)s"], "%(h)s %(Q)s"),
    "chdir": (["--chdir", "/srv/app"], "/srv/app"),
    "pythonpath": (["--pythonpath", "/a,lib"], "/a,lib"),
    "env": (["--env", "A=1", "--env", "B=x=y", "--env", "C="], ("A=1", "B=x=y", "C=")),
}  # fmt: skip
#: Options a ``--workers N`` child does not get on its command line, and why.
KEPT_BY_THE_PARENT = {
    "config": "read once by the parent: the child gets the specs found there",
    "handler": "the same",
    "fd": "refused with --workers N",
    "bind": "refused with --workers N",
    "workers": "each child is one process (--workers 1)",
    "worker_slot": "each child gets its own ($(wid))",
    "stats_file": "each child gets its own ($M2BRIDGE_STATS_FILE)",
    "fd_name": "goes with --fd",
    "reload": "refused with --workers N",
}


def sample(name: str, tmp_path) -> tuple[list[str], object]:
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(M2_CONF)
    argv, expected = SAMPLES[name]
    expected = str(conf) if expected == "{conf}" else expected
    return [word.replace("{conf}", str(conf)) for word in argv], expected


@pytest.fixture
def no_supervisor(monkeypatch):
    monkeypatch.delenv(STATS_ENV, raising=False)
    monkeypatch.delenv(WID_ENV, raising=False)


def test_every_option_has_a_sample_and_a_forwarding_decision():
    assert set(SAMPLES) == set(OPTIONS)
    assert {name for name, option in OPTIONS.items() if not option.forward} == set(
        KEPT_BY_THE_PARENT
    )


@pytest.fixture
def systemd_sockets(monkeypatch):
    """systemd passed this process two sockets, "admin" (fd 3) and "web" (fd 4)."""
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDNAMES", "admin:web")


@pytest.mark.parametrize("name", list(OPTIONS))
def test_a_non_default_option_reaches_the_config(name, tmp_path, no_supervisor, systemd_sockets):
    argv, expected = sample(name, tmp_path)
    config = config_of("a:b", *argv)
    assert getattr(config, name) == expected != getattr(WorkerConfig(app="a:b"), name)


@pytest.mark.parametrize("name", [name for name, option in OPTIONS.items() if option.forward])
def test_a_forwarded_option_reaches_every_child_of_workers_n(name, tmp_path, no_supervisor):
    argv, expected = sample(name, tmp_path)
    parent = config_of("a:b", *argv, "--workers", "2")
    child_args = [word.replace("$(wid)", "1") for word in child_argv(parent)[4:]]
    child = config_of(*child_args)
    assert getattr(child, name) == getattr(parent, name) == expected
    assert (child.workers, child.worker_slot) == (1, 1)


# -- --workers N runs its workers behind a relay (docs/decisions/0001-multi-worker-topology.md)


def served(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[Any, ...]:
    """What ``serve ... --workers N`` hands ``serve_workers`` (not run)."""
    import m2bridge.supervisor

    calls: list[tuple[Any, ...]] = []

    def serve_workers(*args: Any) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(m2bridge.supervisor, "serve_workers", serve_workers)
    args = parse(*argv)
    assert args.run(args) == 0
    (call,) = calls
    return call


def test_workers_n_starts_a_relay_on_the_send_spec_and_its_workers_connect_to_it(
    monkeypatch, no_supervisor
):
    send, recv = "tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"
    argv, count, _, name, relay = served(
        monkeypatch, "a:b", "--workers", "3", "--send-spec", send, "--recv-spec", recv
    )
    bound = relay_endpoint(name)
    assert bound == f"ipc://{default_rundir(name)}/relay.ipc"
    assert relay == [
        sys.executable,
        "-m",
        "m2bridge",
        "relay",
        "--send-spec",
        send,
        "--recv-spec",
        recv,
        "--bind",
        bound,
    ]
    child = config_of(*[word.replace("$(wid)", "1") for word in argv[4:]])
    assert (count, child.relay, child.recv_specs, child.workers) == (3, (bound,), (recv,), 1)
    assert "--send-spec" not in argv


def test_workers_n_with_relay_given_starts_no_relay_of_its_own(monkeypatch, no_supervisor):
    given = "ipc:///tmp/elsewhere.ipc"
    argv, _, _, _, relay = served(
        monkeypatch, "a:b", "--workers", "2", "--relay", given, "--recv-spec", "tcp://127.0.0.1:1"
    )
    assert relay is None
    assert argv[argv.index("--relay") + 1] == given


# -- --fd systemd (socket activation), --reload's child command


def test_fd_systemd_takes_the_first_socket_and_forgets_the_variables(
    systemd_sockets, no_supervisor
):
    assert config_of("a:b", "--fd", "systemd").fd == 3
    assert not {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"} & set(os.environ)


def test_fd_systemd_with_a_name_takes_that_socket(systemd_sockets, no_supervisor):
    assert config_of("a:b", "--fd", "systemd", "--fd-name", "web").fd == 4


def test_fd_systemd_without_sockets_for_this_process_is_a_one_line_error(
    monkeypatch, capsys, no_supervisor
):
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", "1")
    args = parse("a:b", "--fd", "systemd")
    assert args.run(args) == 1
    err = capsys.readouterr().err
    assert "no socket passed by systemd" in err
    assert err.count("\n") == 1


def test_reload_child_command_is_this_one_without_reload(no_supervisor, tmp_path):
    config = config_of(
        "pkg.mod:app", "--reload", "--bind", "127.0.0.1:8000", "--chdir", "rel",
        "--env", "A=1", "--access-log-format", "%(h)s", "--log-format", "json",
    )  # fmt: skip
    argv = reload_child_argv(config)
    assert argv[1:5] == ["-m", "m2bridge", "serve", "pkg.mod:app"]
    assert "--reload" not in argv
    child = config_of(*argv[4:])
    assert child == replace(config, reload=False, chdir=os.path.abspath("rel"))


def test_reload_child_of_a_relay_worker_gets_the_relay_not_the_send_specs(no_supervisor):
    config = config_of("a:b", "--reload", "--relay", "ipc:///tmp/r")
    argv = reload_child_argv(config)
    assert "--send-spec" not in argv
    assert config_of(*argv[4:]) == replace(config, reload=False)


def test_reload_child_of_fd_systemd_gets_the_resolved_fd(systemd_sockets, no_supervisor):
    config = config_of("a:b", "--reload", "--fd", "systemd", "--fd-name", "web")
    argv = reload_child_argv(config)
    assert argv[argv.index("--fd") + 1] == "4"
    assert "--fd-name" not in argv


# -- --chdir, --pythonpath, --env: applied by the process that loads the app


@pytest.fixture
def restored(monkeypatch):
    """Whatever ``prepare`` changes comes back: cwd, sys.path, os.environ."""
    monkeypatch.chdir(os.getcwd())
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "environ", dict(os.environ))


def test_prepare_changes_directory_then_puts_pythonpath_first_and_sets_env(tmp_path, restored):
    (tmp_path / "lib").mkdir()
    prepare(str(tmp_path), "lib,,/abs", ["A=1", "B=x=y", "C="])
    assert os.getcwd() == str(tmp_path)
    assert sys.path[:2] == [str(tmp_path / "lib"), "/abs"]
    assert (os.environ["A"], os.environ["B"], os.environ["C"]) == ("1", "x=y", "")


def test_a_chdir_that_fails_is_a_one_line_error(tmp_path, capsys, restored, no_supervisor):
    args = parse("a:b", "--chdir", str(tmp_path / "missing"))
    assert args.run(args) == 1
    err = capsys.readouterr().err
    assert "--chdir" in err
    assert "No such file or directory" in err
    assert err.count("\n") == 1


def test_workers_n_leaves_chdir_to_its_children(tmp_path, monkeypatch, restored, no_supervisor):
    here = os.getcwd()
    served(monkeypatch, "a:b", "--workers", "2", "--chdir", str(tmp_path), "--env", "ZZ=1")
    assert os.getcwd() == here
    assert "ZZ" not in os.environ

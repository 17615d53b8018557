"""Stack files: defaults, substitutions, and clear errors that name the offending key."""

from __future__ import annotations

import os
import stat
import sys
import textwrap

import pytest

from m2bridge.errors import ConfigError
from m2bridge.supervisor import template
from m2bridge.supervisor.rundir import (
    lock_rundir,
    prepare_rundir,
    remove_pid_file,
    write_pid_file,
)
from m2bridge.supervisor.stack import (
    default_endpoint,
    load_stack,
    substitutions,
    worker_stack,
)


def write(tmp_path, text: str):
    path = tmp_path / "demo.toml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path, text: str):
    return load_stack(write(tmp_path, text))


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


MINIMAL = """
[watchers.hello]
cmd = "python -m m2bridge serve handlers.hello:app --worker-slot $(wid)"
"""


def test_minimal_stack_gets_defaults(tmp_path):
    stack = load(tmp_path, MINIMAL)
    hello = stack.watchers["hello"]
    assert stack.name == "demo"
    assert stack.control.endpoint == default_endpoint(stack.rundir)
    assert stack.control.token is None
    assert hello.cmd[:3] == ("python", "-m", "m2bridge")
    assert (hello.numprocesses, hello.stop_signal, hello.respawn) == (1, "TERM", True)
    assert hello.working_dir == str(tmp_path.resolve())


def test_full_watcher_and_socket_are_read(tmp_path):
    stack = load(
        tmp_path,
        """
        [stack]
        name = "shop"
        rundir = "run"
        [sockets.web]
        host = "127.0.0.1"
        port = 0
        backlog = 64
        reuseport = true
        [sockets.unix]
        path = "web.sock"
        [watchers.web]
        cmd = ["$(python)", "-m", "m2bridge.worker.fd_worker"]
        args = ["--fd", "$(sockets.web)"]
        numprocesses = 3
        env = { A = "1", B = 2, C = true }
        working_dir = "app"
        use_sockets = ["unix"]
        stop_signal = "SIGQUIT"
        graceful_timeout = 5
        warmup_delay = 0.5
        max_requests = 1000
        max_requests_jitter = 50
        max_rss = 128
        respawn = false
        readiness = "stats"
        priority = 3
        [watchers.web.flapping]
        attempts = 2
        window = 1.5
        retry_in = 0.5
        max_delay = 10
        max_retries = -1
        """,
    )
    web = stack.watchers["web"]
    assert stack.name == "shop"
    assert stack.rundir == str(tmp_path.resolve() / "run")
    assert stack.sockets["web"].backlog == 64
    assert stack.sockets["web"].reuseport
    assert stack.sockets["unix"].path == str(tmp_path.resolve() / "web.sock")
    assert web.cmd == ("$(python)", "-m", "m2bridge.worker.fd_worker", "--fd", "$(sockets.web)")
    assert dict(web.env) == {"A": "1", "B": "2", "C": "1"}
    assert web.working_dir == str(tmp_path.resolve() / "app")
    assert web.use_sockets == ("unix",)
    assert web.stop_signal == "QUIT"
    assert (web.graceful_timeout, web.warmup_delay, web.max_requests) == (5.0, 0.5, 1000)
    assert (web.max_requests_jitter, web.max_rss) == (50, 128)
    assert (web.respawn, web.readiness, web.priority) == (False, "stats", 3)
    assert (web.flapping.attempts, web.flapping.window, web.flapping.max_retries) == (2, 1.5, -1)


def test_use_sockets_true_means_every_socket(tmp_path):
    stack = load(
        tmp_path,
        """
        [sockets.a]
        port = 0
        [sockets.b]
        port = 0
        [watchers.w]
        cmd = "true"
        use_sockets = true
        """,
    )
    assert stack.watchers["w"].use_sockets == ("a", "b")


W = "[watchers.w]\ncmd='x'\n"
BAD_STACKS = [
    (W + "numprocesses='two'", "watchers.w.numprocesses: expected an integer >= 0, got 'two'"),
    (W + "numprocess=2", "watchers.w.numprocess: unknown key (did you mean 'numprocesses'?)"),
    ("[watchers.w]\nnumprocesses=2", "watchers.w.cmd: missing"),
    ("[watchers.w]\ncmd=''", "watchers.w.cmd: empty command"),
    ("[watchers.w]\ncmd=3", "watchers.w.cmd: expected a list of strings, got 3"),
    ("[watchers.w]\ncmd=[]", "watchers.w.cmd: empty command"),
    (W + "stop_signal=''", "watchers.w.stop_signal: expected a non-empty string, got ''"),
    (W + "use_sockets='web'", "watchers.w.use_sockets: no socket named 'web'"),
    (W + "stop_signal='BOGUS'", "watchers.w.stop_signal: unknown signal 'BOGUS'"),
    (W + "graceful_timeout=-1", "watchers.w.graceful_timeout: expected a number >= 0.0"),
    (W + "respawn='yes'", "watchers.w.respawn: expected true or false"),
    (W + "readiness='tcp'", "watchers.w.readiness: expected one of stats, delay"),
    (W + "env={A=[1]}", "watchers.w.env.A: expected a string"),
    (W + "use_sockets=['nope']", "watchers.w.use_sockets: no socket named 'nope'"),
    ("[watchers.w]\ncmd='x $(sockets.no)'", "watchers.w.cmd: unknown substitution $(sockets.no)"),
    ("[watchers.w]\ncmd='x $(env.M2B_UNSET)'", "watchers.w.cmd: unknown substitution $(env.M2B"),
    (W + "env={A='$(wat)'}", "watchers.w.env: unknown substitution $(wat)"),
    (W + "[watchers.w.flapping]\nattempts=0", "watchers.w.flapping.attempts: expected an integer"),
    (W + "[watchers.w.flapping]\nretries=3", "watchers.w.flapping.retries: unknown key"),
    (W + "type='docker'", "watchers.w.type: expected one of command, mongrel2"),
    ("[watchers]\nw='x'", "watchers.w: expected a table, got 'x'"),
    (W + "[sockets.s]\nhost='127.0.0.1'", "sockets.s: give either host and port, or path"),
    (W + "[sockets.s]\nport=70000", "sockets.s.port: expected a port number <= 65535"),
    (W + "[sockets.s]\nport=1\npath='x'", "sockets.s: give either host and port, or path"),
    (W + "[control]\nendpoint='tcp://127.0.0.1:5555'", "control.token: a tcp:// control endpoint"),
    (W + "[control]\nendpoint='udp://x'", "control.endpoint: expected ipc:// or tcp://"),
    (W + "[control]\ntoken_file='missing.txt'", "control.token_file: cannot read"),
    (W + "[stack]\nnmae='x'", "stack.nmae: unknown key (did you mean 'name'?)"),
    ("[watcher.w]\ncmd='x'", "watcher: unknown key (did you mean 'watchers'?)"),
    ("", "watchers: the stack defines no watcher"),
    ("[watchers.m]\ntype='mongrel2'", "watchers.m.config: missing"),
    ("[watchers.m]\ntype='mongrel2'\nconfig='m2.txt'", "watchers.m.config: expected a .conf or"),
    ("[watchers.m]\ntype='mongrel2'\nconfig='absent.conf'", "watchers.m.config: no such file"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_STACKS)
def test_bad_stack_file_names_the_key(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert expected in message
    assert str(tmp_path / "demo.toml") in message


def test_invalid_toml_is_a_config_error(tmp_path):
    assert "not valid TOML" in error_of(tmp_path, "[watchers.w\ncmd='x'")


def test_missing_stack_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read stack file"):
        load_stack(tmp_path / "absent.toml")


def test_mongrel2_watcher_runs_one_process(tmp_path):
    (tmp_path / "m2.conf").write_text("")
    text = "[watchers.m]\ntype='mongrel2'\nconfig='m2.conf'\nnumprocesses=2"
    assert "watchers.m.numprocesses: a mongrel2 watcher runs one process" in error_of(
        tmp_path, text
    )


def test_mongrel2_watcher_defaults(tmp_path):
    (tmp_path / "m2.conf").write_text("")
    stack = load(tmp_path, "[watchers.m]\ntype='mongrel2'\nconfig='m2.conf'\nserver='main'")
    watcher = stack.watchers["m"]
    assert watcher.mongrel2 is not None
    assert watcher.mongrel2.server == "main"
    assert watcher.priority == 10
    assert watcher.cmd == ()
    assert watcher.working_dir == f"{stack.rundir}/m"  # its chroot files stay out of the repo


def test_token_file_is_read_and_stripped(tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    stack = load(
        tmp_path,
        "[control]\nendpoint='tcp://127.0.0.1:7000'\ntoken_file='token'\n[watchers.w]\ncmd='x'",
    )
    assert stack.control.token == "s3cret"


def test_substitutions_give_wid_sockets_env_and_python(tmp_path, monkeypatch):
    monkeypatch.setenv("M2B_TEST_VAR", "outer")
    stack = load(
        tmp_path,
        """
        [sockets.web]
        port = 0
        [watchers.w]
        cmd = "x $(wid) $(sockets.web) $(env.M2B_TEST_VAR) $(env.INNER)"
        env = { INNER = "inner" }
        """,
    )
    values = substitutions(stack.watchers["w"], 4, {"web": 7})
    argv = [template.substitute(a, values, "here") for a in stack.watchers["w"].cmd]
    assert argv == ["x", "4", "7", "outer", "inner"]
    assert values["python"] == sys.executable


def test_unknown_substitution_at_spawn_names_where():
    with pytest.raises(ConfigError, match=r"watchers\.w\.cmd: unknown substitution \$\(nope\)"):
        template.substitute("a $(nope)", {}, "watchers.w.cmd")


def test_references_lists_every_name():
    assert template.references(["$(wid)-$(sockets.a)", "$(env.X_Y)"]) == {
        "wid",
        "sockets.a",
        "env.X_Y",
    }


def test_worker_stack_runs_one_watcher_ready_by_stats_file():
    argv = ["python", "-m", "m2bridge", "serve", "--relay", "ipc:///r", "--worker-slot", "$(wid)"]
    stack = worker_stack(argv, 3, 7.5, "hello")
    assert list(stack.watchers) == ["hello"]
    watcher = stack.watchers["hello"]
    assert (watcher.numprocesses, watcher.graceful_timeout, watcher.readiness) == (3, 9.5, "stats")
    assert stack.control.endpoint.startswith("ipc://")
    assert stack.rundir.endswith("/hello")


def test_worker_stack_refuses_an_empty_command():
    with pytest.raises(ConfigError, match="empty worker command"):
        worker_stack([], 1, 1.0, "x")


# -- the runtime directory --


def test_rundir_is_created_private_with_a_stats_dir(tmp_path):
    rundir = prepare_rundir(tmp_path / "a" / "run")
    assert stat.S_IMODE(rundir.stat().st_mode) == 0o700
    assert (rundir / "stats").is_dir()


def test_rundir_mode_is_tightened(tmp_path):
    (tmp_path / "run").mkdir(mode=0o755)
    assert stat.S_IMODE(prepare_rundir(tmp_path / "run").stat().st_mode) == 0o700


def test_rundir_symlink_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="not a directory"):
        prepare_rundir(tmp_path / "run")


def test_rundir_in_a_world_writable_parent_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by other users"):
        prepare_rundir(shared / "run")
    shared.chmod(0o1777)  # sticky, like /tmp: fine
    assert prepare_rundir(shared / "run").is_dir()


def test_second_lock_on_a_rundir_is_refused(tmp_path):
    rundir = prepare_rundir(tmp_path / "run")
    fd = lock_rundir(rundir)
    try:
        with pytest.raises(ConfigError, match="another supervisor is running"):
            lock_rundir(rundir)
    finally:
        os.close(fd)
    os.close(lock_rundir(rundir))


def test_pid_file_naming_a_live_process_is_refused(tmp_path):
    pid_file = tmp_path / "m2b.pid"
    pid_file.write_text("1\n")
    with pytest.raises(ConfigError, match="names a running process"):
        write_pid_file(pid_file)
    pid_file.write_text("not a pid")
    write_pid_file(pid_file)
    assert pid_file.read_text() == f"{os.getpid()}\n"
    remove_pid_file(pid_file)
    assert not pid_file.exists()


def test_pid_file_of_another_process_is_left_alone(tmp_path):
    pid_file = tmp_path / "m2b.pid"
    pid_file.write_text("1\n")
    remove_pid_file(pid_file)
    assert pid_file.exists()

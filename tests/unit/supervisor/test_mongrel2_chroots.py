"""The mongrel2 watchers' chroots, as the supervisor hands them to the other watchers'
processes (``M2BRIDGE_MONGREL2_CHROOTS``) and as ``serve --config`` uses them."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from pathlib import Path

import pytest

from m2bridge import environment
from m2bridge.cli import make_parser
from m2bridge.cli.serve import build_config
from m2bridge.environment import MONGREL2_CHROOTS, Mongrel2Chroot
from m2bridge.errors import ConfigError
from m2bridge.supervisor.launcher import CommandLauncher
from m2bridge.supervisor.mongrel2_watcher import Mongrel2Launcher, load_conf
from m2bridge.supervisor.stack import load_stack
from tests.helpers.worker import REPO_ROOT

DEMO_CONF = REPO_ROOT / "mongrel2_conf" / "examples" / "demo.conf"
DEMO_UUID = "m2bridge-demo"


def stack_in(tmp_path: Path) -> Path:
    shutil.copy(DEMO_CONF, tmp_path / "demo.conf")
    stack = tmp_path / "stack.toml"
    stack.write_text(
        textwrap.dedent(
            f"""
            [stack]
            rundir = "{tmp_path / "run"}"

            [watchers.hello]
            cmd = "$(python) -m m2bridge serve handlers.hello:app --config demo.conf --handler /"

            [watchers.mongrel2]
            type = "mongrel2"
            config = "demo.conf"
            """
        )
    )
    return stack


def serve_args(conf: Path) -> argparse.Namespace:
    return make_parser().parse_args(["serve", "a:app", "--config", str(conf), "--handler", "/"])


def test_command_watchers_carry_the_stacks_mongrel2_watchers(tmp_path):
    stack = load_stack(stack_in(tmp_path))
    assert stack.watchers["hello"].mongrel2_peers == (stack.watchers["mongrel2"],)
    assert stack.watchers["mongrel2"].mongrel2_peers == ()


def test_worker_command_names_where_the_mongrel2_watcher_runs_its_server(tmp_path):
    stack = load_stack(stack_in(tmp_path))
    rundir = Path(stack.rundir)
    rundir.mkdir()
    Mongrel2Launcher(stack.watchers["mongrel2"], rundir).prepare()
    env = CommandLauncher(stack.watchers["hello"], {}, rundir / "stats").command(1).env
    told = environment.mongrel2_chroots(env)
    assert told == [
        Mongrel2Chroot(DEMO_UUID, str(tmp_path / "demo.conf"), str(rundir / "mongrel2"))
    ]


def test_worker_command_fails_when_the_mongrel2_database_is_missing(tmp_path):
    stack = load_stack(stack_in(tmp_path))
    launcher = CommandLauncher(stack.watchers["hello"], {}, Path(stack.rundir) / "stats")
    with pytest.raises(ConfigError, match=r"watchers\.mongrel2\.config"):
        launcher.command(1)


def test_serve_takes_the_supervised_chroot_of_its_server(tmp_path, monkeypatch):
    told = [Mongrel2Chroot(DEMO_UUID, str(DEMO_CONF), "/srv/run/mongrel2")]
    monkeypatch.setattr("os.environ", environment.mongrel2_chroots_environment(told))
    assert build_config(serve_args(DEMO_CONF)).m2_chroot == "/srv/run/mongrel2"


def test_serve_keeps_the_configs_chroot_for_a_server_it_is_not_told_about(monkeypatch):
    told = [Mongrel2Chroot("another-server", str(DEMO_CONF), "/srv/run/other")]
    monkeypatch.setattr("os.environ", environment.mongrel2_chroots_environment(told))
    assert build_config(serve_args(DEMO_CONF)).m2_chroot == "./"
    monkeypatch.setattr("os.environ", {})
    assert build_config(serve_args(DEMO_CONF)).m2_chroot == "./"


def test_serve_picks_by_config_file_between_servers_sharing_a_uuid(tmp_path, monkeypatch):
    other = tmp_path / "other.conf"
    shutil.copy(DEMO_CONF, other)
    told = [
        Mongrel2Chroot(DEMO_UUID, str(other), "/srv/a"),
        Mongrel2Chroot(DEMO_UUID, str(DEMO_CONF), "/srv/b"),
    ]
    monkeypatch.setattr("os.environ", environment.mongrel2_chroots_environment(told))
    assert build_config(serve_args(DEMO_CONF)).m2_chroot == "/srv/b"


def test_serve_refuses_a_uuid_several_watchers_run_from_other_files(tmp_path, monkeypatch):
    third = tmp_path / "third.conf"
    shutil.copy(DEMO_CONF, third)
    told = [
        Mongrel2Chroot(DEMO_UUID, "/x/a.conf", "/srv/a"),
        Mongrel2Chroot(DEMO_UUID, "/x/b.conf", "/srv/b"),
    ]
    monkeypatch.setattr("os.environ", environment.mongrel2_chroots_environment(told))
    with pytest.raises(ConfigError, match="several mongrel2 watchers run server 'm2bridge-demo'"):
        build_config(serve_args(third))


def test_database_given_to_serve_gets_the_same_chroot(tmp_path, monkeypatch):
    db = tmp_path / "demo.sqlite"
    load_conf(DEMO_CONF, db, "test")
    told = [Mongrel2Chroot(DEMO_UUID, str(DEMO_CONF), "/srv/run/mongrel2")]
    monkeypatch.setattr("os.environ", environment.mongrel2_chroots_environment(told))
    assert build_config(serve_args(db)).m2_chroot == "/srv/run/mongrel2"


def test_no_supervised_servers_means_no_variable():
    assert environment.mongrel2_chroots_environment([]) == {}
    assert environment.mongrel2_chroots({}) == []


@pytest.mark.parametrize("raw", ["{", "[1]", '[{"server": "x"}]', "7"])
def test_a_garbled_variable_is_a_config_error(raw):
    with pytest.raises(ConfigError, match=MONGREL2_CHROOTS):
        environment.mongrel2_chroots({MONGREL2_CHROOTS: raw})

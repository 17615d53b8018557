"""Lenient loading: what m2sh ignores is dropped with a located warning; strict refuses it.

Each config in tests/data/mongrel2_conf/lenient/ lists, in its first lines, the problems a
strict load reports (``# strict: LINE:COL message``) and the warnings a lenient load gives
(``# lenient: LINE:COL message``), in order. The integration test
test_config_loader_m2sh.py checks that the lenient rows are m2sh's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from m2bridge.cli import main as m2bridge_main
from mongrel2_conf import ConfigError, Handler, load_config, parse_config, write_config
from mongrel2_conf.examples.generate import demo_config
from mongrel2_conf.loading import check_file

LENIENT = sorted((Path(__file__).parents[2] / "data" / "mongrel2_conf" / "lenient").glob("*.conf"))
SERVER = (
    'main = Server(uuid="u" access_log="a" error_log="e" pid_file="p" default_host="h"'
    ' name="n" port=1 hosts={hosts})\n'
)
HOST = 'h = Host(name="h" routes={"/": Proxy(addr="a" port=1)})\n'


def expected(path: Path, mode: str) -> list[str]:
    """The ``FILE:LINE:COL: message`` lines ``# MODE: LINE:COL message`` announce."""
    prefix = f"# {mode}: "
    lines = path.read_text().splitlines()
    announced = [
        line.removeprefix(prefix).split(" ", 1) for line in lines if line.startswith(prefix)
    ]
    return [f"{path}:{where}: {message}" for where, message in announced]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_there_are_lenient_configs():
    names = ["dropped_routes", "matching_on_server", "undefined_host_name"]
    assert [path.stem for path in LENIENT] == names


@pytest.mark.parametrize("path", LENIENT, ids=lambda p: p.stem)
def test_a_strict_load_refuses_what_m2sh_ignores(path):
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = [problem.located() for problem in caught.value.problems]
    announced = expected(path, "strict")
    assert len(problems) == len(announced), problems
    for problem, line in zip(problems, announced, strict=True):
        assert problem.startswith(line)  # unknown keywords go on with the known ones


@pytest.mark.parametrize("path", LENIENT, ids=lambda p: p.stem)
def test_a_lenient_load_warns_at_each_thing_it_ignores(path):
    assert check_file(path, lenient=True).warnings == expected(path, "lenient")


@pytest.mark.parametrize("path", LENIENT, ids=lambda p: p.stem)
def test_config_load_lenient_writes_and_prints_warnings_strict_writes_nothing(
    path, tmp_path, capsys
):
    db = tmp_path / "config.sqlite"
    write_config(db, demo_config())
    before = digest(db)
    assert m2bridge_main(["config", "load", str(path), "--db", str(db)]) == 1
    assert digest(db) == before
    capsys.readouterr()
    assert m2bridge_main(["config", "load", "--lenient", str(path), "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"loaded {path} into {db}: 1 server, 1 host, ")
    assert err.splitlines() == [f"warning: {line}" for line in expected(path, "lenient")]
    assert digest(db) != before


def test_config_check_takes_lenient_too(capsys):
    path = LENIENT[0]
    assert m2bridge_main(["config", "check", "--lenient", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok (1 server")


def test_dropping_a_keyword_keeps_a_target_shared_by_two_routes_one_object():
    text = (
        'app = Handler(send_spec="tcp://127.0.0.1:1" send_ident="i" recv_spec="tcp://127.0.0.1:2"'
        ' recv_ident="" retries=3)\n'
        'h = Host(name="h" routes={"/a": app "/b": app})\n'
        + SERVER.format(hosts="[h]")
        + "servers = [main]\n"
    )
    routes = parse_config(text, lenient=True).servers[0].hosts[0].routes
    assert isinstance(routes["/a"], Handler)
    assert routes["/a"] is routes["/b"]


def test_lenient_still_refuses_what_m2sh_cannot_load():
    text = HOST + SERVER.format(hosts="[h]") + "servers = [main nope]\n"
    with pytest.raises(ConfigError, match="undefined name 'nope'"):
        parse_config(text, lenient=True)

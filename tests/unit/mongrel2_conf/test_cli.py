"""``m2bridge config load|check|show`` and ``python -m mongrel2_conf``; import hygiene."""

from __future__ import annotations

import contextlib
import json
import runpy
import sqlite3
import sys
from pathlib import Path

import pytest

from m2bridge.cli import main
from mongrel2_conf import cli as mongrel2_conf_cli

EXAMPLES = Path(__file__).parents[3] / "mongrel2_conf" / "examples"
STATIC_PROXY = EXAMPLES / "static_proxy.conf"


def test_load_writes_the_database_and_summarises(tmp_path, capsys):
    db = tmp_path / "config.sqlite"
    assert main(["config", "load", str(STATIC_PROXY), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"loaded {STATIC_PROXY} into {db}: 1 server, 2 hosts, 10 routes, 2 handlers, 1 dir, "
        "1 proxy\n"
    )
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT how FROM log").fetchall() == [(str(STATIC_PROXY),)]


def test_check_reports_ok_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "check", str(STATIC_PROXY)]) == 0
    assert capsys.readouterr().out.endswith(
        ": ok (1 server, 2 hosts, 10 routes, 2 handlers, 1 dir, 1 proxy)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_check_reports_every_problem_with_its_position(tmp_path, capsys, caplog):
    bad = tmp_path / "bad.conf"
    bad.write_text(
        'h = Handler(send_spec="tcp://127.0.0.1:1" send_ident="x" recv_spec="udp://x" recv_ident=""'
        ' protocl="json")\nd = Dir(base="s" index_file="i")\nservers = []\n'
    )
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: {bad}:1:92: unknown keyword 'protocl' for Handler (known: send_spec, send_ident,"
        " recv_spec, recv_ident, raw_payload, protocol)",
        f"error: {bad}:2:5: Dir(...) is missing its required 'default_ctype'",
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f"config {bad}: 2 problems, nothing written"
    ]


def test_a_missing_file_is_an_error_not_a_crash(tmp_path, capsys):
    assert main(["config", "check", str(tmp_path / "nope.conf")]) == 1
    assert (
        f"error: {tmp_path / 'nope.conf'}: cannot read the config: No such file"
        in capsys.readouterr().err
    )


def test_show_prints_servers_routes_and_handlers(tmp_path, capsys):
    db = tmp_path / "config.sqlite"
    main(["config", "load", str(STATIC_PROXY), "--db", str(db)])
    capsys.readouterr()
    assert main(["config", "show", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SERVER", "UUID", "LISTEN", "CHROOT", "DEFAULT_HOST", "HOSTS"]
    assert lines[1].split() == ["main", "m2bridge-static-proxy", "0.0.0.0:6767", "./", "localhost",
                                "localhost,", "127.0.0.1"]  # fmt: skip
    assert ["main", "localhost", "localhost", "/static/", "dir", "static/", "(index", "index.html,",
            "text/plain)"] in [line.split() for line in lines]  # fmt: skip
    handler_rows = [line.split() for line in lines if line.startswith("#")]
    assert handler_rows == [
        [
            "#1",
            "tcp://127.0.0.1:9997",
            "tcp://127.0.0.1:9996",
            "site-handler",
            "tnetstring",
            "/",
            "/app/",
        ],
        ["#2", "tcp://127.0.0.1:9995", "tcp://127.0.0.1:9994", "api-handler", "json", "/api/"],
    ]


def test_show_json_is_for_scripts(tmp_path, capsys):
    db = tmp_path / "config.sqlite"
    main(["config", "load", str(STATIC_PROXY), "--db", str(db)])
    capsys.readouterr()
    assert main(["config", "show", "--db", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (server,) = data["servers"]
    assert server["uuid"] == "m2bridge-static-proxy"
    routes = {r["path"]: r for r in server["hosts"][0]["routes"]}
    assert routes["/legacy/"] == {
        "path": "/legacy/",
        "type": "proxy",
        "addr": "127.0.0.1",
        "port": 8080,
    }
    assert routes["/app/"]["handler"] == routes["/"]["handler"] == 1
    assert [h["send_ident"] for h in data["handlers"]] == ["site-handler", "api-handler"]
    assert data["settings"]["zeromq.threads"] == "1"


def test_show_of_a_broken_database_fails_cleanly(tmp_path, capsys):
    db = tmp_path / "config.sqlite"
    db.write_bytes(b"SQLite format 3\0" + b"\0" * 200)
    assert main(["config", "show", "--db", str(db)]) == 1
    assert "cannot read the database" in capsys.readouterr().err


def test_config_without_a_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["config"])
    assert caught.value.code == 2


def test_mongrel2_conf_main_runs_a_command_without_m2bridge(capsys):
    assert mongrel2_conf_cli.main(["check", str(STATIC_PROXY)]) == 0
    assert capsys.readouterr().out == (
        f"{STATIC_PROXY}: ok (1 server, 2 hosts, 10 routes, 2 handlers, 1 dir, 1 proxy)\n"
    )


def test_mongrel2_conf_main_without_a_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        mongrel2_conf_cli.main([])
    assert caught.value.code == 2
    assert "usage: python -m mongrel2_conf" in capsys.readouterr().err


def test_python_m_mongrel2_conf_exits_with_the_command_status(tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "mongrel2_conf.__main__", raising=False)
    monkeypatch.setattr(sys, "argv", ["mongrel2_conf", "check", str(tmp_path / "nope.conf")])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("mongrel2_conf", run_name="__main__")
    assert caught.value.code == 1
    assert "cannot read the config: No such file" in capsys.readouterr().err


def test_importing_mongrel2_conf_main_runs_nothing(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "mongrel2_conf.__main__", raising=False)
    namespace = runpy.run_module("mongrel2_conf.__main__")
    assert callable(namespace["main"])
    assert capsys.readouterr() == ("", "")


def test_the_demo_generator_writes_the_database_named_on_its_command_line(
    tmp_path, capsys, monkeypatch
):
    db = tmp_path / "demo.sqlite"
    monkeypatch.delitem(sys.modules, "mongrel2_conf.examples.generate", raising=False)
    monkeypatch.setattr(sys, "argv", ["generate", str(db)])
    runpy.run_module("mongrel2_conf.examples.generate", run_name="__main__")
    assert capsys.readouterr().out == "wrote 1 route(s)\n"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT path FROM route").fetchall() == [("/",)]


def test_the_demo_generator_writes_config_sqlite_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "mongrel2_conf.examples.generate", raising=False)
    monkeypatch.setattr(sys, "argv", ["generate"])
    runpy.run_module("mongrel2_conf.examples.generate", run_name="__main__")
    assert capsys.readouterr().out == "wrote 1 route(s)\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.sqlite"]

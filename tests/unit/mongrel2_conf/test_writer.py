"""mongrel2_conf writer: m2sh's rows and ids, one transaction, the old database kept intact."""

from __future__ import annotations

import contextlib
import getpass
import os
import sqlite3
import stat

import pytest

import mongrel2_conf.schema as schema
import mongrel2_conf.writer as writer
from mongrel2_conf import (
    Config,
    ConfigError,
    Dir,
    Filter,
    Handler,
    Host,
    Proxy,
    Server,
    parse_config,
    to_rows,
    write_config,
)
from mongrel2_conf.examples.generate import demo_config


def handler(n: int, ident: str = "") -> Handler:
    return Handler(
        send_spec=f"tcp://127.0.0.1:{9000 + 2 * n}",
        send_ident=ident or f"h{n}",
        recv_spec=f"tcp://127.0.0.1:{9001 + 2 * n}",
        recv_ident="",
    )


def server(hosts: list[Host], uuid: str = "s1", port: int = 6767) -> Server:
    return Server(
        uuid=uuid, access_log="/logs/a.log", error_log="/logs/e.log", pid_file="/run/m.pid",
        default_host="localhost", name=uuid, port=port, hosts=hosts,
    )  # fmt: skip


def rows_of(db, table: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def test_one_target_object_is_one_row_and_equal_copies_are_two():
    shared = handler(1)
    rows = to_rows(
        Config(servers=[server([Host(name="localhost", routes={
            "/a": shared, "/b": shared, "/c": handler(2, "twin"), "/d": handler(2, "twin"),
        })])])
    )  # fmt: skip
    assert [r[2] for r in rows["handler"]] == ["h1", "twin", "twin"]
    assert [(r[1], r[4]) for r in rows["route"]] == [("/a", 1), ("/b", 1), ("/c", 2), ("/d", 3)]


def test_hosts_get_a_row_per_occurrence_but_share_their_targets():
    host = Host(name="www", routes={"/": Dir(base="d/", index_file="i", default_ctype="t/p")})
    rows = to_rows(Config(servers=[server([host]), server([host], uuid="s2", port=6768)]))
    assert [r[1:] for r in rows["host"]] == [(1, 0, "www", "www"), (2, 0, "www", "www")]
    assert len(rows["directory"]) == 1
    assert [(r[3], r[4], r[5]) for r in rows["route"]] == [(1, 1, "dir"), (2, 1, "dir")]


def test_server_defaults_are_those_m2sh_writes():
    (row,) = to_rows(Config(servers=[server([])]))["server"]
    values = dict(zip(schema.COLUMNS["server"], row, strict=True))
    assert (values["chroot"], values["bind_addr"], values["use_ssl"]) == ("", "0.0.0.0", 0)
    assert values["control_port"] == ""


def test_text_numbers_keep_leading_zeros_and_cache_ttl_follows_m2sh():
    config = parse_config(
        'd = Dir(base="d/" index_file="i" default_ctype="t" cache_ttl=05)\n'
        'e = Dir(base="e/" index_file="i" default_ctype="t" cache_ttl=30)\n'
        'main = Server(uuid="u" access_log="a" error_log="e" pid_file="p" default_host="h"'
        ' name="n" port=0080 hosts=[Host(name="h" routes={"/d": d "/e": e})])\n'
        'settings = {"limits.content_length": 0020480, "zeromq.threads": 2}\nservers = [main]\n'
    )
    rows = to_rows(config)
    assert rows["server"][0][10] == 80
    assert [r[4] for r in rows["directory"]] == [0, 30]  # m2sh ignores a ttl starting with 0
    assert [r[1:] for r in rows["setting"]] == [
        ("zeromq.threads", "2"),
        ("limits.content_length", "0020480"),
    ]


def test_default_mimetypes_are_written_and_extra_ones_replace_their_row():
    rows = to_rows(Config(servers=[], mimetypes={".txt": "text/x-mine", ".new": "a/b"}))
    mimetypes = rows["mimetype"]
    assert len(mimetypes) == 857 - 1 + 2
    assert (147, "text/plain", ".txt") not in mimetypes
    assert mimetypes[-2:] == [(858, "text/x-mine", ".txt"), (859, "a/b", ".new")]


def test_filters_are_stored_as_tnetstrings_per_server():
    null = Filter(name="/null.so", settings={"min_size": 1000})
    config = Config(servers=[Server(**{**vars(server([])), "filters": [null]})])
    assert to_rows(config)["filter"] == [(1, 1, "/null.so", "18:8:min_size,4:1000#}")]


def test_write_config_creates_the_m2sh_schema_and_a_log_row(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "getlogin", lambda: (_ for _ in ()).throw(OSError("no tty")))
    monkeypatch.setenv("LOGNAME", "deployer")
    db = tmp_path / "config.sqlite"
    rows = write_config(db, demo_config(), how="demo.conf")
    assert rows_of(db, "route") == rows["route"]
    assert rows_of(db, "handler") == rows["handler"]
    assert len(rows_of(db, "mimetype")) == 857
    (log,) = rows_of(db, "log")
    assert (log[1], log[2], log[3], log[5], log[6]) == (
        "deployer", "load", os.uname().nodename, "demo.conf", "command",
    )  # fmt: skip


def test_a_new_load_keeps_log_rows_and_other_tables_like_m2sh(tmp_path):
    db = tmp_path / "config.sqlite"
    write_config(db, demo_config(), how="first")
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE mine (x TEXT)")
        conn.execute("INSERT INTO mine VALUES ('kept')")
    write_config(db, demo_config(port=7000), how="second")
    assert [r[5] for r in rows_of(db, "log")] == ["first", "second"]
    assert rows_of(db, "mine") == [("kept",)]
    assert rows_of(db, "server")[0][10] == 7000


def test_the_file_mode_of_the_old_database_is_kept(tmp_path):
    db = tmp_path / "config.sqlite"
    write_config(db, demo_config())
    db.chmod(0o640)
    write_config(db, demo_config())
    assert stat.S_IMODE(db.stat().st_mode) == 0o640


def test_a_failing_write_leaves_the_old_database_and_no_temp_file(tmp_path, monkeypatch):
    db = tmp_path / "config.sqlite"
    write_config(db, demo_config(), how="old")
    before = db.read_bytes()
    broken = [*schema.statements(), "INSERT INTO nowhere VALUES (1)"]
    monkeypatch.setattr(writer, "statements", lambda: broken)
    with pytest.raises(ConfigError, match="cannot write the database: no such table: nowhere"):
        write_config(db, demo_config(port=7000))
    assert db.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.sqlite"]


def test_a_target_that_is_not_a_database_is_left_alone(tmp_path):
    db = tmp_path / "config.sqlite"
    db.write_bytes(b"this is not sqlite at all, just some text " * 100)
    with pytest.raises(ConfigError, match="cannot read the old database") as caught:
        write_config(db, demo_config())
    assert caught.value.file == str(db)
    assert db.read_bytes() == b"this is not sqlite at all, just some text " * 100


def test_a_directory_is_not_overwritten(tmp_path):
    with pytest.raises(ConfigError, match="a directory, not a database file") as caught:
        write_config(tmp_path, demo_config())
    assert caught.value.file == str(tmp_path)


def test_a_missing_directory_is_an_error_not_a_crash(tmp_path):
    with pytest.raises(ConfigError, match="cannot write the database: No such file or directory"):
        write_config(tmp_path / "missing" / "config.sqlite", demo_config())


def test_invalid_objects_built_in_python_are_refused_before_writing(tmp_path):
    bad = Host(name="h", routes={"/": Dir(base="static", index_file="i", default_ctype="t")})
    with pytest.raises(ConfigError, match="Dir 'static': Dir base 'static' must end with '/'"):
        write_config(tmp_path / "config.sqlite", [server([bad])])
    assert not (tmp_path / "config.sqlite").exists()


def test_write_config_takes_servers_settings_and_mimetypes(tmp_path):
    db = tmp_path / "config.sqlite"
    proxy = Proxy(addr="127.0.0.1", port=8080)
    write_config(
        db,
        [server([Host(name="localhost", routes={"/": proxy})])],
        settings={"zeromq.threads": 1},
        mimetypes={".md": "text/markdown"},
    )
    assert rows_of(db, "setting") == [(1, "zeromq.threads", "1")]
    assert rows_of(db, "proxy") == [(1, "127.0.0.1", 8080)]
    assert rows_of(db, "mimetype")[-1] == (858, "text/markdown", ".md")


@pytest.mark.parametrize("error", [KeyError("uid 4242"), OSError("No username set")])
def test_the_log_row_names_an_unknown_user_when_no_user_name_can_be_found(error, monkeypatch):
    def no_user() -> str:
        raise error

    monkeypatch.setattr(os, "getlogin", lambda: (_ for _ in ()).throw(OSError("no tty")))
    monkeypatch.delenv("LOGNAME", raising=False)
    monkeypatch.setattr(getpass, "getuser", no_user)
    assert writer.log_row("demo.conf") == (
        "unknown", "load", os.uname().nodename, "demo.conf", "command",
    )  # fmt: skip


def test_the_log_row_falls_back_to_the_user_getpass_finds(monkeypatch):
    monkeypatch.setattr(os, "getlogin", lambda: (_ for _ in ()).throw(OSError("no tty")))
    monkeypatch.delenv("LOGNAME", raising=False)
    monkeypatch.setattr(getpass, "getuser", lambda: "builder")
    assert writer.log_row("x")[0] == "builder"


def test_a_database_path_in_a_symlink_loop_is_an_error_and_leaves_no_temp_file(tmp_path):
    db = tmp_path / "config.sqlite"
    db.symlink_to(db)
    with pytest.raises(ConfigError) as caught:
        write_config(db, demo_config())
    assert caught.value.message == "cannot replace the database: Too many levels of symbolic links"
    assert caught.value.file == str(db)
    assert [p.name for p in tmp_path.iterdir()] == ["config.sqlite"]
    assert db.is_symlink()

"""Reading a database back, and finding one handler's settings (``serve --config``)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import pytest

from mongrel2_conf import (
    ConfigError,
    Handler,
    HandlerSettings,
    find_handler,
    load_any,
    load_config,
    read_config,
    write_config,
)
from mongrel2_conf.loading import is_database

EXAMPLES = Path(__file__).parents[3] / "mongrel2_conf" / "examples"
STATIC_PROXY = EXAMPLES / "static_proxy.conf"


@pytest.fixture
def static_proxy_db(tmp_path: Path) -> Path:
    db = tmp_path / "anything.db"  # told apart from a config by content, not by name
    write_config(db, load_config(STATIC_PROXY))
    return db


def test_read_config_gives_back_servers_hosts_routes_and_shared_targets(static_proxy_db):
    config = read_config(static_proxy_db)
    (server,) = config.servers
    assert (server.uuid, server.port, server.chroot) == ("m2bridge-static-proxy", 6767, "./")
    assert [host.name for host in server.hosts] == ["localhost", "127.0.0.1"]
    routes = server.hosts[0].routes
    assert sorted(routes) == ["/", "/api/", "/app/", "/legacy/", "/static/"]
    assert routes["/"] is routes["/app/"] is server.hosts[1].routes["/app/"]
    assert isinstance(routes["/api/"], Handler)
    assert routes["/api/"].protocol == "json"
    assert config.settings["upload.temp_store"] == "/tmp/upload.XXXXXX"
    assert config.mimetypes == {".md": "text/markdown"}


def test_load_any_reads_a_config_file_or_a_database(static_proxy_db):
    from_db, from_file = load_any(static_proxy_db), load_any(STATIC_PROXY)
    assert [s.uuid for s in from_db.servers] == [s.uuid for s in from_file.servers]


def test_reading_something_that_is_not_a_mongrel2_database_fails_clearly(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the database"):
        read_config(tmp_path / "missing.sqlite")
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match="not a Mongrel2 config database"):
        read_config(empty)


@pytest.mark.parametrize("source", ["config", "database"])
@pytest.mark.parametrize("wanted", ["/app/", "site-handler", "/"])
def test_find_handler_by_route_or_send_ident(source, wanted, static_proxy_db):
    path = STATIC_PROXY if source == "config" else static_proxy_db
    assert find_handler(path, wanted) == HandlerSettings(
        send_spec="tcp://127.0.0.1:9997",
        recv_spec="tcp://127.0.0.1:9996",
        send_ident="site-handler",
        recv_ident="",
        protocol="tnetstring",
        chroot="./",
        upload_temp_store="/tmp/upload.XXXXXX",
        routes=("/", "/app/"),
        server_uuid="m2bridge-static-proxy",
    )


def test_find_handler_by_assigned_name_in_a_config_file():
    settings = find_handler(STATIC_PROXY, "api")
    assert (settings.send_ident, settings.protocol, settings.routes) == (
        "api-handler",
        "json",
        ("/api/",),
    )


def test_find_handler_lists_the_choices_when_nothing_matches(static_proxy_db):
    with pytest.raises(ConfigError) as caught:
        find_handler(static_proxy_db, "/nope/")
    assert caught.value.file == str(static_proxy_db)
    assert "no handler '/nope/'" in str(caught.value)
    assert "/app/ (send_ident site-handler)" in str(caught.value)
    with pytest.raises(ConfigError, match="no handler '/static/'"):
        find_handler(static_proxy_db, "/static/")  # a Dir route is not a handler


def write_conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.conf"
    path.write_text(text)
    return path


TWO_SERVERS = """
a = Handler(send_spec="tcp://127.0.0.1:5001" send_ident="a"
  recv_spec="tcp://127.0.0.1:5002" recv_ident="")
b = Handler(send_spec="tcp://127.0.0.1:5003" send_ident="b"
  recv_spec="tcp://127.0.0.1:5004" recv_ident="")
one = Server(uuid="one" access_log="/a" error_log="/e" pid_file="/p" default_host="h" name="one"
  port=1 chroot="/srv/one/" hosts=[Host(name="h" routes={"/x": a "/y": b})])
two = Server(uuid="two" access_log="/a" error_log="/e" pid_file="/p" default_host="h" name="two"
  port=2 chroot="/srv/two/" hosts=[Host(name="h" routes={"/x": b "/z": a})])
servers = [one two]
"""


def test_a_route_leading_to_several_handlers_is_ambiguous(tmp_path):
    conf = write_conf(tmp_path, TWO_SERVERS)
    with pytest.raises(ConfigError, match="'/x' matches several handlers"):
        find_handler(conf, "/x")
    assert find_handler(conf, "/x", server="two").send_ident == "b"


def test_one_handler_under_two_chroots_needs_a_server(tmp_path):
    conf = write_conf(tmp_path, TWO_SERVERS)
    with pytest.raises(ConfigError, match=r"different chroots: one .*'/srv/one/'.*pass a server"):
        find_handler(conf, "a")
    assert find_handler(conf, "a", server="two").chroot == "/srv/two/"
    assert find_handler(conf, "a", server="one").routes == ("/x",)
    with pytest.raises(ConfigError, match="no server 'three'"):
        find_handler(conf, "a", server="three")


def test_find_handler_reports_an_invalid_config_with_its_position(tmp_path):
    conf = write_conf(tmp_path, "servers = [main,]\n")
    with pytest.raises(ConfigError) as caught:
        find_handler(conf, "/")
    assert (caught.value.file, caught.value.line, caught.value.column) == (str(conf), 1, 16)


def edit_database(db: Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        for statement in statements:
            conn.execute(statement)


def test_a_number_column_holding_text_reads_as_zero(static_proxy_db):
    edit_database(static_proxy_db, "UPDATE server SET port = 'http'")
    assert read_config(static_proxy_db).servers[0].port == 0


def test_a_route_to_a_missing_target_is_skipped_with_a_warning(static_proxy_db, caplog):
    edit_database(
        static_proxy_db, "UPDATE route SET target_id = 99 WHERE path = '/api/' AND host_id = 1"
    )
    with caplog.at_level(logging.WARNING, logger="mongrel2_conf"):
        config = read_config(static_proxy_db)
    assert "/api/" not in config.servers[0].hosts[0].routes
    assert "/app/" in config.servers[0].hosts[0].routes
    assert [r.getMessage() for r in caplog.records] == [
        "route '/api/' points at missing handler 99; skipped"
    ]


def test_unreadable_filter_settings_read_as_empty_with_a_warning(static_proxy_db, caplog):
    edit_database(
        static_proxy_db,
        "INSERT INTO filter (server_id, name, settings) VALUES (1, '/bad.so', 'garbage')",
        "INSERT INTO filter (server_id, name, settings) VALUES (1, '/list.so', '4:1:a,]')",
    )
    with caplog.at_level(logging.WARNING, logger="mongrel2_conf"):
        config = read_config(static_proxy_db)
    filters = {f.name: f.settings for f in config.servers[0].filters}
    assert filters["/bad.so"] == filters["/list.so"] == {}
    assert [r.getMessage() for r in caplog.records] == [
        "filter '/bad.so': unreadable settings (not a tnetstring: bad length prefix); read as {}"
    ]


def test_a_database_without_a_mimetype_table_has_no_extra_mimetypes(static_proxy_db):
    edit_database(static_proxy_db, "DROP TABLE mimetype")
    config = read_config(static_proxy_db)
    assert config.mimetypes == {}
    assert [s.uuid for s in config.servers] == ["m2bridge-static-proxy"]


def test_a_file_that_cannot_be_opened_is_not_a_database(tmp_path):
    assert not is_database(tmp_path / "missing.sqlite")
    assert not is_database(tmp_path)  # a directory
    with pytest.raises(ConfigError, match="cannot read the config: No such file"):
        load_any(tmp_path / "missing.sqlite")


def test_find_handler_in_a_config_without_handler_routes_says_so(tmp_path):
    conf = write_conf(
        tmp_path,
        'main = Server(uuid="u" access_log="/a" error_log="/e" pid_file="/p" default_host="h"'
        ' name="n" port=1 hosts=[Host(name="h" routes={"/": Dir(base="s/" index_file="i"'
        ' default_ctype="t/p")})])\nservers = [main]\n',
    )
    with pytest.raises(ConfigError) as caught:
        find_handler(conf, "/")
    assert caught.value.message == "no handler '/'; the config has no Handler routes"
    assert caught.value.file == str(conf)

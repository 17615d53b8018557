"""Reading a database back, and finding one handler's settings (``serve --config``)."""

from __future__ import annotations

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

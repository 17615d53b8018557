"""mongrel2_conf validation of model objects (files and Python code alike), and warnings."""

from __future__ import annotations

import logging

import pytest

from mongrel2_conf import Config, ConfigError, Dir, Handler, Host, Proxy, Server, parse_config
from mongrel2_conf.validate import find_warnings, valid_endpoint, validate


def handler(**changes: object) -> Handler:
    fields: dict[str, object] = {
        "send_spec": "tcp://127.0.0.1:9997",
        "send_ident": "app",
        "recv_spec": "tcp://127.0.0.1:9996",
        "recv_ident": "",
    }
    return Handler(**{**fields, **changes})  # type: ignore[arg-type]


def config_with(target: object = None, **server_changes: object) -> Config:
    routes = {"/": target if target is not None else handler()}
    fields: dict[str, object] = {
        "uuid": "s1", "access_log": "/a", "error_log": "/e", "pid_file": "/p",
        "default_host": "localhost", "name": "main", "port": 6767,
        # a test passes a route target that is deliberately not a Handler, Dir or Proxy
        "hosts": [Host(name="localhost", routes=routes)],  # type: ignore[arg-type]
    }  # fmt: skip
    return Config(servers=[Server(**{**fields, **server_changes})])  # type: ignore[arg-type]


def messages(config: Config) -> list[str]:
    return [problem.message for problem in validate(config)]


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ("tcp://127.0.0.1:9997", True),
        ("tcp://*:9997", True),
        ("tcp://localhost:1", True),
        ("tcp://[::1]:9997", True),
        ("ipc://run/handler", True),
        ("ipc:///tmp/h.sock", True),
        ("tcp://127.0.0.1", False),
        ("tcp://127.0.0.1:0", False),
        ("tcp://127.0.0.1:65536", False),
        ("tcp:/127.0.0.1:1", False),
        ("inproc://handler", False),
        ("ipc://", False),
        ("", False),
    ],
)
def test_endpoints_a_handler_process_can_reach(spec, ok):
    assert valid_endpoint(spec) is ok


def test_a_valid_config_has_no_problems():
    assert validate(config_with()) == []


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            handler(protocol="tnet"),
            "Handler 'app': Handler protocol must be 'json' or 'tnetstring'",
        ),
        (handler(raw_payload=2), "Handler 'app': Handler raw_payload must be 0 or 1, not 2"),
        (handler(send_spec="tcp://x"), "Handler 'app': malformed ZeroMQ endpoint send_spec="),
        (handler(recv_spec="tcp://127.0.0.1:9997"), "send_spec and recv_spec are the same"),
        (Dir(base="static", index_file="i", default_ctype="t"), "Dir 'static': Dir base"),
        (Proxy(addr="h", port=0), "Proxy 'h': Proxy port 0 is not between 1 and 65535"),
        (handler(send_ident=5), "Handler 5: Handler.send_ident must be str, not 5"),
        (Proxy(addr="h", port=True), "Proxy.port must be int, not True"),
        ("not a target", "route '/' of host 'localhost' must be a Handler or Dir or Proxy, not"),
    ],
)
def test_objects_built_in_python_are_named_in_their_problem(target, message):
    (problem,) = validate(config_with(target))
    assert problem.line is None
    assert message in str(problem)


def test_wrong_classes_in_the_object_tree_are_named_by_their_place():
    good = config_with().servers[0]
    assert messages(Config(servers=[good, "main"])) == [  # type: ignore[list-item]
        "each of servers must be a Server, not 'main'"
    ]
    hostless = Server(**{**vars(good), "hosts": [Proxy(addr="a", port=1)]})
    assert messages(Config(servers=[hostless])) == [
        "each host of server 'main' must be a Host, not Proxy(addr='a', port=1)"
    ]
    listed = Server(**{**vars(good), "hosts": [Host(name="h", routes=["/"])]})  # type: ignore[arg-type]
    assert messages(Config(servers=[listed])) == ["routes of host 'h' must be a Mapping, not ['/']"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 0}, "port 0 is not between 1 and 65535"),
        ({"use_ssl": 2}, "use_ssl must be 0 or 1, not 2"),
        ({"port": "6767"}, "Server.port must be int, not '6767'"),
    ],
)
def test_server_fields_are_checked(changes, message):
    assert message in str(validate(config_with(**changes))[0])


def test_servers_on_one_listener_are_a_warning_not_a_problem():
    first = config_with().servers[0]
    clash = Server(**{**vars(first), "uuid": "s2", "name": "other"})
    assert messages(Config(servers=[first, clash])) == []
    assert find_warnings(Config(servers=[first, clash])) == [
        "server 'other' listens on port 6767 like server 'main': Mongrel2 runs one server per"
        " process, so they cannot run together"
    ]
    apart = Server(**{**vars(first), "uuid": "s2", "bind_addr": "127.0.0.2"})
    local = Server(**{**vars(first), "bind_addr": "127.0.0.1"})
    assert find_warnings(Config(servers=[local, apart])) == []


def test_handlers_sharing_an_endpoint_must_be_the_same_handler():
    same = config_with(handler())
    twin = Host(name="b", routes={"/": handler()})
    ok = Config(
        servers=[Server(**{**vars(same.servers[0]), "hosts": [*same.servers[0].hosts, twin]})]
    )
    assert messages(ok) == []
    other = Host(name="b", routes={"/": handler(send_ident="other")})
    clash = Config(
        servers=[Server(**{**vars(same.servers[0]), "hosts": [*same.servers[0].hosts, other]})]
    )
    assert messages(clash) == [
        f"Handler 'other': {role} 'tcp://127.0.0.1:{port}' is already the {role} of another Handler"
        for role, port in (("send_spec", 9997), ("recv_spec", 9996))
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"zeromq.threads": "two"}, "must be an integer (Mongrel2 reads it with atoi)"),
        ({"upload.temp_store": 5}, "must be a string, not 5"),
        ({"zeromq.threads": 1.5}, "must be a string or an integer, not 1.5"),
        ({"zeromq.threads": True}, "must be a string or an integer, not True"),
        ({"": "x"}, "must be a non-empty string key"),
    ],
)
def test_settings_values_must_be_of_the_kind_mongrel2_reads(settings, message):
    config = Config(servers=[], settings=settings)
    (problem,) = validate(config)
    assert message in problem.message


def test_integer_settings_accept_digit_strings_as_m2sh_stores_text():
    assert (
        validate(Config(servers=[], settings={"zeromq.threads": "2", "limits.min_ping": -1})) == []
    )


def test_every_problem_of_a_file_is_reported_with_its_position():
    with pytest.raises(ConfigError) as caught:
        parse_config(
            'h = Handler(send_spec="tcp://x" send_ident="a" recv_spec="tcp://127.0.0.1:2"\n'
            '  recv_ident="" protocol="xml")\n'
            'd = Dir(base="s" index_file="i" default_ctype="t")\n'
            'main = Server(uuid="u" access_log="a" error_log="e" pid_file="p" default_host="h"'
            ' name="n" port=1 hosts=[Host(name="h" routes={"/": h "/d": d})])\nservers = [main]\n',
            "many.conf",
        )
    located = [p.located() for p in caught.value.problems]
    assert located == [
        "many.conf:1:23: malformed ZeroMQ endpoint send_spec='tcp://x': expected tcp://HOST:PORT"
        " (port 1-65535) or ipc://PATH",
        "many.conf:2:26: Handler protocol must be 'json' or 'tnetstring', not 'xml'",
        "many.conf:3:14: Dir base 's' must end with '/' (Mongrel2 rejects it otherwise)",
    ]
    assert str(caught.value) == "\n".join(located)


def test_unknown_settings_and_a_missing_default_host_are_warnings(caplog):
    text = (
        'main = Server(uuid="u" access_log="a" error_log="e" pid_file="p" default_host="nope"'
        ' name="n" port=1 hosts=[Host(name="h" routes={"/": Proxy(addr="a" port=1)})])\n'
        'settings = {"zeromq.thread": 1}\nservers = [main]\n'
    )
    with caplog.at_level(logging.WARNING, logger="mongrel2_conf"):
        config = parse_config(text, "w.conf")
    assert find_warnings(config) == [
        "w.conf:2:30: unknown setting 'zeromq.thread': Mongrel2 1.12 ignores it",
        "w.conf:1:79: default_host 'nope' of server 'n' is not the name of one of its hosts",
    ]
    assert [r.getMessage() for r in caplog.records] == find_warnings(config)


@pytest.mark.parametrize(
    ("mimetypes", "message"),
    [
        ({"": "text/plain"}, "mimetypes value for '' must be a non-empty key and a string value, "
                             "not 'text/plain'"),
        ({".x": 5}, "mimetypes value for '.x' must be a non-empty key and a string value, not 5"),
        ({7: "a/b"}, "mimetypes value for 7 must be a non-empty key and a string value, not 'a/b'"),
    ],
)  # fmt: skip
def test_mimetypes_need_a_non_empty_string_key_and_a_string_value(mimetypes, message):
    (problem,) = validate(Config(servers=[], mimetypes=mimetypes))
    assert problem.message == message

"""The console's WSGI application (m2bridge/web/app.py) called with environs and a fake source:
routes, the console token, the CSRF rules and bad input. Also the CLI's bind and token rules
(m2bridge/cli/web.py)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from m2bridge.cli.web import is_loopback, parse_bind, read_token
from m2bridge.errors import ConfigError, ControlError
from m2bridge.supervisor.control import Errno
from m2bridge.web.app import (
    COMMANDS,
    MAX_BODY,
    ConsoleApp,
    ConsoleConfig,
    encode_event,
)

CSRF = "csrf-value-123"
TOKEN = "s3cret-console-token-0123456789"


class FakeSource:
    """The collector's seam: canned state and events; records commands."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.error: ControlError | None = None
        self.streams_closed = 0

    def state(self):
        return {"at": 1.0, "error": None, "stats": {"watchers": [{"name": "hello"}]}}

    def subscribe(self):
        try:
            yield ("history", {"points": [{"t": 1.0}], "state": self.state()})
            yield None
            yield ("update", {"point": {"t": 2.0}, "state": self.state()})
        finally:
            self.streams_closed += 1

    def command(self, name, args):
        self.commands.append((name, args))
        if self.error is not None:
            raise self.error
        return {"name": args["name"], "numprocesses": 3}


class Result:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.code = int(status.split()[0])
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)


def call(app, method="GET", path="/", query="", body=b"", headers=None, content_length=True):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:9180",
        "wsgi.input": io.BytesIO(body),
    }
    if content_length:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, response_headers

    iterable = app(environ, start_response)
    try:
        data = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return Result(seen["status"], seen["headers"], data)


def command(app, payload, headers=None, **kw):
    base = {"Content-Type": "application/json", "X-M2bridge-CSRF": CSRF}
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call(app, "POST", "/api/command", body=body, headers={**base, **(headers or {})}, **kw)


@pytest.fixture
def source():
    return FakeSource()


@pytest.fixture
def app(source):
    """An open console (no token): loopback clients only."""
    return ConsoleApp(source, ConsoleConfig(csrf=CSRF))


@pytest.fixture
def locked(source):
    """A console with a token."""
    return ConsoleApp(source, ConsoleConfig(csrf=CSRF, token=TOKEN))


# -- the page and static files --


def test_page_embeds_the_csrf_value_and_loads_only_local_files(app):
    result = call(app)
    assert result.code == 200
    assert result.header("Content-Type") == "text/html; charset=utf-8"
    html = result.body.decode()
    assert f'<meta name="m2bridge-csrf" content="{CSRF}">' in html
    assert "/static/uPlot.iife.min.js" in html
    assert "http://" not in html
    assert "https://" not in html
    assert result.header("Cache-Control") == "no-store"


def test_every_response_carries_the_security_headers(app):
    for result in (call(app), call(app, path="/nope")):
        assert result.header("X-Content-Type-Options") == "nosniff"
        assert result.header("X-Frame-Options") == "DENY"
        assert "frame-ancestors 'none'" in (result.header("Content-Security-Policy") or "")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("console.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("uPlot.min.css", "text/css; charset=utf-8"),
        ("uPlot.LICENSE", "text/plain; charset=utf-8"),
    ],
)
def test_static_files_are_served_with_their_content_type(app, name, content_type):
    result = call(app, path=f"/static/{name}")
    assert result.code == 200
    assert result.header("Content-Type") == content_type
    assert int(result.header("Content-Length") or 0) == len(result.body) > 0


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/",
        "/static/.hidden",
        "/static/sub/console.js",
        "/static/missing.js",
        "/static/console.html",  # the page has one address: /
    ],
)
def test_static_serves_only_files_of_the_static_directory(app, path):
    result = call(app, path=path)
    assert result.code == 404
    assert result.json()["ok"] is False


def test_static_files_are_read_once(source, tmp_path):
    (tmp_path / "a.js").write_text("one")
    app = ConsoleApp(source, ConsoleConfig(csrf=CSRF, static_dir=tmp_path))
    assert call(app, path="/static/a.js").body == b"one"
    (tmp_path / "a.js").write_text("two")
    assert call(app, path="/static/a.js").body == b"one"


# -- routes and methods --


def test_unknown_path_is_404(app):
    result = call(app, path="/admin")
    assert result.code == 404
    assert result.json() == {"ok": False, "error": "no such page: /admin"}


def test_wrong_method_is_405_with_allow(app):
    post_page = call(app, "POST", "/")
    assert post_page.code == 405
    assert post_page.header("Allow") == "GET"
    get_command = call(app, "GET", "/api/command")
    assert get_command.code == 405
    assert get_command.header("Allow") == "POST"
    assert call(app, "DELETE", "/static/console.js").code == 405


def test_state_is_the_source_state_plus_the_csrf_value(app):
    result = call(app, path="/api/state")
    assert result.code == 200
    assert result.header("Content-Type") == "application/json"
    assert result.json() == {
        "at": 1.0,
        "error": None,
        "stats": {"watchers": [{"name": "hello"}]},
        "csrf": CSRF,
    }


def test_events_stream_history_heartbeats_and_updates(app, source):
    result = call(app, path="/events")
    assert result.code == 200
    assert result.header("Content-Type") == "text/event-stream"
    assert result.header("Cache-Control") == "no-cache"
    chunks = result.body.decode().split("\n\n")
    assert chunks[0] == "retry: 2000"
    assert chunks[1].startswith("event: history\ndata: {")
    assert json.loads(chunks[1].split("data: ", 1)[1])["points"] == [{"t": 1.0}]
    assert chunks[2] == ": keep-alive"
    assert chunks[3].startswith("event: update\ndata: ")
    assert source.streams_closed == 1


def test_closing_the_stream_early_closes_the_subscription(app, source):
    """The server closes the iterable when the client leaves: the hub must forget it."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/events", "HTTP_HOST": "localhost:9180"}
    stream = app(environ, lambda *a: None)
    assert next(iter(stream)) == b"retry: 2000\n\n"
    assert next(iter(stream)).startswith(b"event: history")
    stream.close()
    assert source.streams_closed == 1


def test_a_plain_iterator_of_events_streams_too(source):
    source.subscribe = lambda: iter([("history", {"points": []})])
    result = call(ConsoleApp(source, ConsoleConfig(csrf=CSRF)), path="/events")
    assert result.body == b'retry: 2000\n\nevent: history\ndata: {"points":[]}\n\n'


def test_an_event_is_one_data_line():
    data = {"text": "two\nlines", "n": [1, 2]}
    encoded = encode_event(("update", data))
    assert encoded.count(b"\n") == 3
    assert encoded.endswith(b"\n\n")
    assert json.loads(encoded.split(b"data: ", 1)[1]) == data
    assert encode_event(None) == b": keep-alive\n\n"


# -- access: the open console --


def test_open_console_answers_loopback_names(app):
    for host in ("127.0.0.1:9180", "localhost:9180", "[::1]:9180", "LOCALHOST"):
        assert call(app, headers={"Host": host}).code == 200, host


def test_open_console_refuses_another_host_name_against_dns_rebinding(app, caplog):
    with caplog.at_level(logging.WARNING, logger="m2bridge.web"):
        result = call(app, path="/api/state", headers={"Host": "evil.example:9180"})
    assert result.code == 403
    assert "unexpected Host" in caplog.text


def test_open_console_also_answers_its_bind_address(source):
    app = ConsoleApp(source, ConsoleConfig(csrf=CSRF, hosts=frozenset({"127.0.0.2"})))
    assert call(app, headers={"Host": "127.0.0.2:9180"}).code == 200


def test_open_console_ignores_a_token_in_the_url(app):
    assert call(app, query="token=whatever").code == 200


# -- access: with a console token --


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/static/console.js"),
        ("GET", "/api/state"),
        ("GET", "/events"),
        ("POST", "/api/command"),
        ("GET", "/unknown"),
    ],
)
def test_every_route_needs_the_token(locked, source, method, path, caplog):
    with caplog.at_level(logging.WARNING, logger="m2bridge.web"):
        result = call(locked, method, path, headers={"X-M2bridge-CSRF": CSRF})
    assert result.code == 401
    assert result.header("WWW-Authenticate") == "Bearer"
    assert result.json() == {"ok": False, "error": "console token required"}
    assert f"401 {method} {path} from 127.0.0.1" in caplog.text
    assert source.commands == []


def test_bearer_token_opens_every_route(locked):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert call(locked, headers=bearer).code == 200
    assert call(locked, path="/api/state", headers=bearer).code == 200
    assert call(locked, path="/static/console.css", headers=bearer).code == 200
    assert command(locked, {"command": "incr", "name": "hello"}, bearer).code == 200


def test_a_token_console_answers_any_host_name(locked):
    headers = {"Authorization": f"Bearer {TOKEN}", "Host": "console.example.org"}
    assert call(locked, headers=headers).code == 200


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"],
)
def test_a_wrong_authorization_is_refused(locked, authorization):
    assert call(locked, headers={"Authorization": authorization}).code == 401


def test_bearer_scheme_is_case_insensitive(locked):
    assert call(locked, headers={"Authorization": f"bearer {TOKEN}"}).code == 200


def test_token_in_the_url_sets_the_cookie_and_redirects_to_the_bare_page(locked):
    result = call(locked, query=f"token={TOKEN}")
    assert result.code == 303
    assert result.header("Location") == "/"
    cookie = result.header("Set-Cookie") or ""
    assert cookie.startswith(f"m2bridge_console={TOKEN};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    assert result.body == b""


def test_the_cookie_opens_every_route(locked):
    cookie = {"Cookie": f"other=1; m2bridge_console={TOKEN}"}
    assert call(locked, headers=cookie).code == 200
    assert call(locked, path="/events", headers=cookie).code == 200


@pytest.mark.parametrize("cookie", ["m2bridge_console=wrong", "m2bridge_console=", 'a="\\', ""])
def test_a_wrong_or_malformed_cookie_is_refused(locked, cookie):
    assert call(locked, headers={"Cookie": cookie}).code == 401


def test_a_wrong_token_in_the_url_is_refused_and_logged(locked, caplog):
    with caplog.at_level(logging.WARNING, logger="m2bridge.web"):
        result = call(locked, query="token=guess")
    assert result.code == 401
    assert result.header("Set-Cookie") is None
    assert "wrong console token" in caplog.text


# -- commands: CSRF --


def test_command_with_the_csrf_header_runs(app, source, caplog):
    with caplog.at_level(logging.INFO, logger="m2bridge.web"):
        result = command(app, {"command": "incr", "name": "hello"})
    assert result.code == 200
    assert result.json() == {"ok": True, "data": {"name": "hello", "numprocesses": 3}}
    assert source.commands == [("incr", {"name": "hello"})]
    assert "command incr hello from 127.0.0.1: ok" in caplog.text


@pytest.mark.parametrize("name", COMMANDS)
def test_every_allowed_command_goes_to_the_supervisor(app, source, name):
    assert command(app, {"command": name, "name": "hello"}).code == 200
    assert source.commands == [(name, {"name": "hello"})]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-M2bridge-CSRF": ""},
        {"X-M2bridge-CSRF": "guess"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},
    ],
)
def test_command_without_the_csrf_value_or_from_another_origin_is_403(app, source, headers, caplog):
    with caplog.at_level(logging.WARNING, logger="m2bridge.web"):
        result = command(app, {"command": "incr", "name": "hello"}, headers)
    assert result.code == 403
    assert result.json()["ok"] is False
    assert "403 POST /api/command from 127.0.0.1" in caplog.text
    assert source.commands == []


def test_command_without_any_csrf_header_is_403(app, source):
    body = json.dumps({"command": "incr", "name": "hello"}).encode()
    result = call(
        app, "POST", "/api/command", body=body, headers={"Content-Type": "application/json"}
    )
    assert result.code == 403
    assert "X-M2bridge-CSRF" in result.json()["error"]


def test_command_from_the_console_own_origin_runs(app):
    result = command(app, {"command": "decr", "name": "hello"}, {"Origin": "http://127.0.0.1:9180"})
    assert result.code == 200


def test_even_a_token_holder_needs_the_csrf_header(locked, source):
    cookie = {"Cookie": f"m2bridge_console={TOKEN}", "X-M2bridge-CSRF": "guess"}
    assert command(locked, {"command": "stop", "name": "hello"}, cookie).code == 403
    assert source.commands == []


# -- commands: bad input --


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"{not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b"[" * 100000 + b"]" * 100000, "body larger than 4096 bytes"),
        ({"command": "quit", "name": "hello"}, "command must be one of"),
        ({"command": "signal", "name": "hello"}, "command must be one of"),
        ({"command": ["incr"], "name": "hello"}, "command must be one of"),
        ({"name": "hello"}, "command must be one of"),
        ({"command": "incr"}, "name (a watcher name) is required"),
        ({"command": "incr", "name": ""}, "name (a watcher name) is required"),
        ({"command": "incr", "name": 5}, "name (a watcher name) is required"),
        ({"command": "incr", "name": "x" * 201}, "name (a watcher name) is required"),
    ],
)
def test_bad_command_bodies_get_a_clear_4xx(app, source, payload, error):
    result = command(app, payload)
    assert 400 <= result.code < 500
    assert result.json()["ok"] is False
    assert error in result.json()["error"]
    assert source.commands == []


def test_a_huge_body_is_413_and_not_read(app):
    stream = io.BytesIO(b"x" * (MAX_BODY + 1))
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/command",
        "HTTP_HOST": "127.0.0.1:9180",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(10**9),
        "HTTP_X_M2BRIDGE_CSRF": CSRF,
        "wsgi.input": stream,
    }
    seen = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    assert seen == ["413 Content Too Large"]
    assert stream.tell() == 0
    assert b"larger than" in body


def test_command_needs_a_json_content_type(app):
    result = command(app, {"command": "incr", "name": "hello"}, {"Content-Type": "text/plain"})
    assert result.code == 415
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert command(app, b"command=incr&name=hello", form).code == 415
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert command(app, {"command": "incr", "name": "hello"}, charset).code == 200


def test_command_needs_a_content_length(app):
    result = command(app, {"command": "incr", "name": "hello"}, content_length=False)
    assert result.code == 411


# -- commands: the supervisor's answer --


def test_a_supervisor_error_is_passed_on_as_409(app, source, caplog):
    source.error = ControlError("no watcher named 'x'", Errno.NO_SUCH_WATCHER)
    with caplog.at_level(logging.WARNING, logger="m2bridge.web"):
        result = command(app, {"command": "incr", "name": "x"})
    assert result.code == 409
    assert result.json() == {"ok": False, "error": "no watcher named 'x'", "errno": 5}
    assert "command incr x from 127.0.0.1: no watcher named 'x'" in caplog.text


def test_an_unreachable_supervisor_is_502(app, source):
    source.error = ControlError("no answer from ipc://x within 5 s", Errno.UNREACHABLE)
    result = command(app, {"command": "restart", "name": "hello"})
    assert result.code == 502
    assert result.json()["errno"] == Errno.UNREACHABLE


# -- the CLI's rules (m2bridge/cli/web.py) --


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9180", ("127.0.0.1", 9180)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9180", ("::1", 9180)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_bind(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["9180", ":9180", "127.0.0.1:", "host:http", "h:70000", "[]:1"])
def test_parse_bind_refuses_what_is_not_host_port(text):
    with pytest.raises(ConfigError, match="--bind must be HOST:PORT"):
        parse_bind(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_read_token_prefers_the_file_to_the_environment(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    assert read_token(str(path), "from-the-environment-0123") == TOKEN
    assert read_token(None, f" {TOKEN} ") == TOKEN
    assert read_token(None, None) is None
    assert read_token(None, "") is None


@pytest.mark.parametrize("token", ["short", "has space in it 0123456789", "semi;colon0123456789"])
def test_read_token_refuses_a_weak_or_cookie_unsafe_token(token):
    with pytest.raises(ConfigError, match="16 to 512 characters"):
        read_token(None, token)


def test_read_token_reports_an_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_token(str(tmp_path / "missing"), None)

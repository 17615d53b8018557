"""Unit tests of m2bridge.wsgi.environ: real Mongrel2 1.12.2 messages in, PEP 3333 environ out.

The raw messages are copied from /work/shared/mongrel2-captures/*.txt (file named above each).
"""

from __future__ import annotations

import io
import sys
import wsgiref.validate

import pytest

import m2bridge.wsgi.environ as environ_module
from m2bridge._types import Environ, StartResponse
from m2bridge.errors import ConfigError
from m2bridge.wire.protocol import Request, parse_message
from m2bridge.wsgi.environ import (
    ROUTE,
    EnvironSettings,
    build_environ,
    environ_key,
    route_prefix,
    server_address,
    split_path,
    unquote_path,
)
from m2bridge.wsgi.response import FileWrapper, Response

# get_query.txt
GET_QUERY = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 2 /tnet/sub/path 295:11:REM"
    b"OTE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTE"
    b"RN,5:/tnet,5:QUERY,22:a=1&b=two%20x&c=%C3%A9,3:URI,37:/tnet/sub/"
    b"path?a=1&b=two%20x&c=%C3%A9,7:VERSION,8:HTTP/1.1,4:PATH,14:/tnet"
    b"/sub/path,4:host,9:localhost,10:user-agent,5:probe,6:accept,3:*/"
    b"*,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# get_query.txt
FRAGMENT = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 3 /tnet/x 222:11:REMOTE_ADD"
    b"R,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/t"
    b"net,8:FRAGMENT,4:frag,5:QUERY,3:q=1,3:URI,11:/tnet/x?q=1,7:VERSI"
    b"ON,8:HTTP/1.1,4:PATH,7:/tnet/x,4:host,9:localhost,15:x-forwarded"
    b"-for,9:127.0.0.1,}0:,"
)
# get_query.txt
BARE_QUERY = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 4 /tnet 193:11:REMOTE_ADDR,"
    b"9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/tne"
    b"t,5:QUERY,0:,3:URI,6:/tnet?,7:VERSION,8:HTTP/1.1,4:PATH,5:/tnet,"
    b"4:host,9:localhost,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# get_query.txt
ENCODED_PATH = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 6 /tnet/a%20b//c%2Fd 209:11"
    b":REMOTE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:P"
    b"ATTERN,5:/tnet,3:URI,18:/tnet/a%20b//c%2Fd,7:VERSION,8:HTTP/1.1,"
    b"4:PATH,18:/tnet/a%20b//c%2Fd,4:host,9:localhost,15:x-forwarded-f"
    b"or,9:127.0.0.1,}0:,"
)
# routing.txt
ROUTE_EXACT = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 36 /tnet 181:11:REMOTE_ADDR"
    b",9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/tn"
    b"et,3:URI,5:/tnet,7:VERSION,8:HTTP/1.1,4:PATH,5:/tnet,4:host,9:lo"
    b"calhost,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# routing.txt
ROUTE_TNETFOO = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 37 /tnetfoo 187:11:REMOTE_A"
    b"DDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:"
    b"/tnet,3:URI,8:/tnetfoo,7:VERSION,8:HTTP/1.1,4:PATH,8:/tnetfoo,4:"
    b"host,9:localhost,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# routing.txt
ROUTE_SLASH = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 38 /tnet/ 183:11:REMOTE_ADD"
    b"R,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/t"
    b"net,3:URI,6:/tnet/,7:VERSION,8:HTTP/1.1,4:PATH,6:/tnet/,4:host,9"
    b":localhost,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# routing.txt
ROUTE_REGEX = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 39 /re/file.txt 207:11:REMO"
    b"TE_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTER"
    b"N,14:/re/(.*\\.txt)$,3:URI,12:/re/file.txt,7:VERSION,8:HTTP/1.1,4"
    b":PATH,12:/re/file.txt,4:host,9:localhost,15:x-forwarded-for,9:12"
    b"7.0.0.1,}0:,"
)
# headers.txt
DUPLICATES = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 28 /tnet/h 350:11:REMOTE_AD"
    b"DR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:/"
    b"tnet,3:URI,7:/tnet/h,7:VERSION,8:HTTP/1.1,4:PATH,7:/tnet/h,6:coo"
    b"kie,12:3:a=1,3:b=2,]7:x-empty,0:,4:host,9:localhost,12:x-mixed-c"
    b"ase,19:Value With  Spaces ,5:x-foo,20:3:one,3:two,5:three,]15:ac"
    b"cept-encoding,4:gzip,12:content-type,10:text/plain,15:x-forwarde"
    b"d-for,9:127.0.0.1,}0:,"
)
# headers.txt
SPOOF = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 30 /tnet/spoof 308:11:REMOT"
    b"E_ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN"
    b",5:/tnet,3:URI,11:/tnet/spoof,7:VERSION,8:HTTP/1.1,4:PATH,11:/tn"
    b"et/spoof,4:path,5:/evil,23:x-mongrel2-upload-start,11:/etc/passw"
    b"d,6:method,3:PUT,4:host,9:localhost,22:x-mongrel2-upload-done,11"
    b":/etc/passwd,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# headers.txt
ENCODINGS = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 31 /tnet/enc 241:11:REMOTE_"
    b"ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5"
    b":/tnet,3:URI,9:/tnet/enc,7:VERSION,8:HTTP/1.1,4:PATH,9:/tnet/enc"
    b',6:x-utf8,5:caf\xc3\xa9,4:host,9:localhost,7:x-quote,5:a"b\\c,7:x-latin'
    b",4:caf\xe9,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# headers.txt
HOST_PORT = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 33 /tnet/hp 193:11:REMOTE_A"
    b"DDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5:"
    b"/tnet,3:URI,8:/tnet/hp,7:VERSION,8:HTTP/1.1,4:PATH,8:/tnet/hp,4:"
    b"host,14:localhost:6767,15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# versions.txt
HTTP10_NO_HOST = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 20 /tnet/v10 170:11:REMOTE_"
    b"ADDR,9:127.0.0.1,6:METHOD,3:GET,10:URL_SCHEME,4:http,7:PATTERN,5"
    b":/tnet,3:URI,9:/tnet/v10,7:VERSION,8:HTTP/1.0,4:PATH,9:/tnet/v10"
    b",15:x-forwarded-for,9:127.0.0.1,}0:,"
)
# json_protocol.txt
JSON_SUB = (
    b'9d9a3c11-0f5e-4a56-9c2a-4fdf0f1b2c01 47 /json/sub 273:{"PATH":"/'
    b'json/sub","x-forwarded-for":"127.0.0.1","x-latin":"caf\xe9","x-quot'
    b'e":"a\\"b\\\\c","host":"localhost","cookie":["a=1","b=2"],"METHOD":'
    b'"GET","VERSION":"HTTP/1.1","URI":"/json/sub?a=1&b=2","QUERY":"a='
    b'1&b=2","PATTERN":"/json","URL_SCHEME":"http","REMOTE_ADDR":"127.'
    b'0.0.1"},0:,'
)
# post.txt
POST_FORM = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 7 /tnet/form 270:11:REMOTE_"
    b"ADDR,9:127.0.0.1,6:METHOD,4:POST,10:URL_SCHEME,4:http,7:PATTERN,"
    b"5:/tnet,3:URI,10:/tnet/form,7:VERSION,8:HTTP/1.1,4:PATH,10:/tnet"
    b"/form,4:host,9:localhost,14:content-length,2:23,12:content-type,"
    b"33:application/x-www-form-urlencoded,15:x-forwarded-for,9:127.0."
    b"0.1,}23:a=1&b=hello+world&c=%26,"
)
# upload.txt
UPLOAD_DONE = (
    b"54c6755b-9628-40a4-9a2d-cc82a816345e 58 /tnet/up 356:11:REMOTE_A"
    b"DDR,9:127.0.0.1,6:METHOD,4:POST,10:URL_SCHEME,4:http,7:PATTERN,5"
    b":/tnet,3:URI,8:/tnet/up,7:VERSION,8:HTTP/1.1,4:PATH,8:/tnet/up,2"
    b"3:x-mongrel2-upload-start,18:/tmp/upload.BJbmru,4:host,9:localho"
    b"st,14:content-length,6:100000,12:content-type,24:application/oct"
    b"et-stream,22:x-mongrel2-upload-done,18:/tmp/upload.BJbmru,15:x-f"
    b"orwarded-for,9:127.0.0.1,}0:,"
)


def assert_valid_environ(environ: Environ) -> None:
    """Run wsgiref's PEP 3333 validator on ``environ`` (AssertionError or WSGIWarning if not)."""

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    start_response = Response("GET", "HTTP/1.1", keep_alive=True).start_response
    result = wsgiref.validate.validator(app)(environ, start_response)
    assert list(result) == [b"ok"]
    result.close()  # type: ignore[attr-defined]


def environ_of(raw: bytes, settings: EnvironSettings | None = None) -> Environ:
    request = parse_message(raw)
    assert isinstance(request, Request)
    return build_environ(
        request, io.BytesIO(request.body), settings or EnvironSettings(), sys.stderr
    )


def make_request(path: str = "/", **headers: str | list[str]) -> Request:
    """A GET request for ``path``; ``__`` in a keyword becomes ``-`` (``x__real__ip``)."""
    base: dict[str, str | list[str]] = {
        "METHOD": "GET",
        "VERSION": "HTTP/1.1",
        "PATH": path,
        "URI": path,
        "REMOTE_ADDR": "127.0.0.1",
        "URL_SCHEME": "http",
        "host": "localhost",
    }
    base.update({key.replace("__", "-"): value for key, value in headers.items()})
    return Request(b"sender-1", 7, path, base, b"")


def environ_for(request: Request, settings: EnvironSettings | None = None) -> Environ:
    return build_environ(request, io.BytesIO(), settings or EnvironSettings(), sys.stderr)


ALL_CAPTURES = [
    GET_QUERY,
    FRAGMENT,
    BARE_QUERY,
    ENCODED_PATH,
    ROUTE_EXACT,
    ROUTE_TNETFOO,
    ROUTE_SLASH,
    ROUTE_REGEX,
    DUPLICATES,
    SPOOF,
    ENCODINGS,
    HOST_PORT,
    HTTP10_NO_HOST,
    JSON_SUB,
    POST_FORM,
    UPLOAD_DONE,
]


# ------------------------------------------------------------------ PEP 3333 conformance


@pytest.mark.parametrize("raw", ALL_CAPTURES)
@pytest.mark.parametrize("script_name", ["", ROUTE, "/tnet"])
def test_every_captured_request_gives_a_valid_pep3333_environ(raw: bytes, script_name: str) -> None:
    environ = environ_of(raw, EnvironSettings(script_name=script_name))
    assert_valid_environ(environ)
    assert [key for key, value in environ.items() if value is None] == []


def test_validator_helper_detects_a_violation() -> None:
    environ = environ_of(GET_QUERY)
    environ["HTTP_CONTENT_TYPE"] = "text/plain"
    with pytest.raises(AssertionError, match="HTTP_CONTENT_TYPE"):
        assert_valid_environ(environ)


def test_wsgi_keys_are_set_from_arguments_and_settings() -> None:
    request = parse_message(POST_FORM)
    assert isinstance(request, Request)
    body = io.BytesIO(request.body)
    errors = io.StringIO()
    settings = EnvironSettings(multithread=False, multiprocess=False)
    environ = build_environ(request, body, settings, errors)
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.input"] is body
    assert environ["wsgi.errors"] is errors
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.file_wrapper"] is FileWrapper
    assert environ["wsgi.url_scheme"] == "http"
    assert "m2bridge.request" not in environ  # its fields are all in the environ already
    assert environ["m2bridge.conn_id"] == 7
    assert environ["SERVER_SOFTWARE"] == "m2bridge"


def test_defaults_say_multithread_and_multiprocess() -> None:
    environ = environ_of(GET_QUERY)
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is True


def test_each_call_returns_a_fresh_dict() -> None:
    request = make_request("/x")
    first = environ_for(request)
    first["PATH_INFO"] = "/changed"
    first["SERVER_SOFTWARE"] = "changed"
    first["HTTP_X_ADDED"] = "1"
    second = environ_for(request)
    assert (second["PATH_INFO"], second["SERVER_SOFTWARE"]) == ("/x", "m2bridge")
    assert "HTTP_X_ADDED" not in second


# ------------------------------------------------------------------ captured requests


def test_get_with_query_string_keeps_the_raw_query() -> None:
    environ = environ_of(GET_QUERY)
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/tnet/sub/path"
    assert environ["QUERY_STRING"] == "a=1&b=two%20x&c=%C3%A9"
    assert environ["REQUEST_URI"] == "/tnet/sub/path?a=1&b=two%20x&c=%C3%A9"
    assert environ["RAW_URI"] == environ["REQUEST_URI"]
    assert environ["SERVER_NAME"] == "localhost"
    assert environ["SERVER_PORT"] == "80"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["HTTP_USER_AGENT"] == "probe"
    assert environ["HTTP_ACCEPT"] == "*/*"
    assert environ["HTTP_HOST"] == "localhost"
    assert environ["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert "CONTENT_TYPE" not in environ
    assert "CONTENT_LENGTH" not in environ


def test_query_of_a_request_with_a_fragment_excludes_the_fragment() -> None:
    environ = environ_of(FRAGMENT)
    assert environ["QUERY_STRING"] == "q=1"
    assert "HTTP_FRAGMENT" not in environ


def test_bare_question_mark_gives_an_empty_query() -> None:
    environ = environ_of(BARE_QUERY)
    assert environ["QUERY_STRING"] == ""
    assert environ["PATH_INFO"] == "/tnet"


def test_path_is_percent_decoded_to_latin1_and_never_normalized() -> None:
    environ = environ_of(ENCODED_PATH)
    assert environ["PATH_INFO"] == "/tnet/a b//c/d"
    assert environ["REQUEST_URI"] == "/tnet/a%20b//c%2Fd"


def test_utf8_percent_escapes_become_latin1_code_points() -> None:
    environ = environ_for(make_request("/caf%C3%A9/%zz%"))
    assert environ["PATH_INFO"] == "/caf\xc3\xa9/%zz%"
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/%zz%"


def test_repeated_headers_are_joined_and_cookies_with_semicolons() -> None:
    environ = environ_of(DUPLICATES)
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_FOO"] == "one, two, three"
    assert environ["HTTP_X_EMPTY"] == ""
    assert environ["HTTP_X_MIXED_CASE"] == "Value With  Spaces "
    assert environ["HTTP_ACCEPT_ENCODING"] == "gzip"
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert "HTTP_CONTENT_TYPE" not in environ


def test_client_headers_named_like_mongrel2_keys_cannot_spoof_anything() -> None:
    environ = environ_of(SPOOF)
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/tnet/spoof"
    assert environ["HTTP_METHOD"] == "PUT"
    assert environ["HTTP_PATH"] == "/evil"
    assert not [key for key in environ if "MONGREL2" in key]
    assert "/etc/passwd" not in environ.values()


def test_raw_header_bytes_arrive_as_latin1_strings() -> None:
    environ = environ_of(ENCODINGS)
    assert environ["HTTP_X_LATIN"] == "caf\xe9"
    assert environ["HTTP_X_UTF8"] == "caf\xc3\xa9"
    assert environ["HTTP_X_QUOTE"] == 'a"b\\c'


def test_host_with_port_sets_server_port() -> None:
    environ = environ_of(HOST_PORT)
    assert environ["SERVER_NAME"] == "localhost"
    assert environ["SERVER_PORT"] == "6767"
    assert environ["HTTP_HOST"] == "localhost:6767"


def test_http10_without_host_uses_the_default_server() -> None:
    environ = environ_of(HTTP10_NO_HOST)
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert environ["SERVER_NAME"] == "localhost"
    assert environ["SERVER_PORT"] == "80"
    assert "HTTP_HOST" not in environ
    settings = EnvironSettings(default_server_name="example.org", default_server_port="8080")
    environ = environ_of(HTTP10_NO_HOST, settings)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.org", "8080")


def test_json_protocol_request_gives_the_same_kind_of_environ() -> None:
    environ = environ_of(JSON_SUB, EnvironSettings(script_name=ROUTE))
    assert environ["SCRIPT_NAME"] == "/json"
    assert environ["PATH_INFO"] == "/sub"
    assert environ["QUERY_STRING"] == "a=1&b=2"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["HTTP_X_LATIN"] == "caf\xe9"


def test_post_form_carries_content_type_length_and_body() -> None:
    environ = environ_of(POST_FORM)
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "23"
    assert environ["wsgi.input"].read() == b"a=1&b=hello+world&c=%26"
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_upload_headers_never_reach_the_application() -> None:
    environ = environ_of(UPLOAD_DONE)
    assert environ["CONTENT_LENGTH"] == "100000"
    assert environ["CONTENT_TYPE"] == "application/octet-stream"
    assert not [key for key in environ if "UPLOAD" in key or "MONGREL2" in key]


# ------------------------------------------------------------------ SCRIPT_NAME / PATH_INFO


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (ROUTE_EXACT, ("/tnet", "")),
        (ROUTE_SLASH, ("/tnet", "/")),
        (GET_QUERY, ("/tnet", "/sub/path")),
        (ENCODED_PATH, ("/tnet", "/a b//c/d")),
        (ROUTE_TNETFOO, ("", "/tnetfoo")),
        (ROUTE_REGEX, ("", "/re/file.txt")),
    ],
)
def test_route_script_name_comes_from_pattern_only_on_a_segment_boundary(
    raw: bytes, expected: tuple[str, str]
) -> None:
    environ = environ_of(raw, EnvironSettings(script_name=ROUTE))
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == expected


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/static/", "/static/x", "/static"),
        ("/static/", "/static/", "/static"),
        ("/static/", "/staticx", ""),
        ("/", "/anything", ""),
        ("/a.b", "/a.b/c", "/a.b"),
        ("/my-app", "/my-app/c", "/my-app"),
        ("/api/(.*)", "/api/x", ""),
        ("/x[0-9]", "/x[0-9]", ""),
        ("/end$", "/end$", ""),
        ("/a", "/b", ""),
        (None, "/x", ""),
        ("", "/x", ""),
    ],
)
def test_route_prefix_accepts_only_plain_prefixes(
    pattern: str | None, path: str, expected: str
) -> None:
    assert route_prefix(pattern, path) == expected


def test_route_without_pattern_header_leaves_script_name_empty() -> None:
    request = make_request("/tnet/x")
    assert split_path(request, ROUTE) == ("", "/tnet/x")


def test_repeated_pattern_uses_the_first() -> None:
    request = make_request("/tnet/x", PATTERN=["/tnet", "/other"])
    assert split_path(request, ROUTE) == ("/tnet", "/x")


@pytest.mark.parametrize(
    ("script_name", "path", "expected"),
    [
        ("/app", "/app/x", ("/app", "/x")),
        ("/app", "/app", ("/app", "")),
        ("/app/", "/app/x", ("/app", "/x")),
        ("/app", "/application", ("/app", "/application")),
        ("/app", "/other", ("/app", "/other")),
        ("/", "/x", ("", "/x")),
        ("", "/x", ("", "/x")),
        ("", "", ("", "")),
        ("", "/a%2Fb", ("", "/a/b")),
        ("/a b", "/a%20b/c", ("/a b", "/c")),
    ],
)
def test_fixed_script_name_is_stripped_on_a_segment_boundary(
    script_name: str, path: str, expected: tuple[str, str]
) -> None:
    assert split_path(make_request(path), script_name) == expected


@pytest.mark.parametrize("raw", ALL_CAPTURES)
@pytest.mark.parametrize("script_name", ["", ROUTE])
def test_script_name_plus_path_info_is_always_the_decoded_path(
    raw: bytes, script_name: str
) -> None:
    request = parse_message(raw)
    assert isinstance(request, Request)
    script, info = split_path(request, script_name)
    assert script + info == unquote_path(request.path)
    assert not script.endswith("/")


@pytest.mark.parametrize("bad", ["app", "route/", "x/y"])
def test_invalid_script_name_setting_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="script_name"):
        EnvironSettings(script_name=bad)


@pytest.mark.parametrize("bad", ["", "http", "8o", "\u0668\u0660"])
def test_invalid_default_port_setting_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="default_server_port"):
        EnvironSettings(default_server_port=bad)


# ------------------------------------------------------------------ QUERY_STRING


def test_missing_query_falls_back_to_the_uri() -> None:
    request = make_request("/x", URI="/x?a=1&b=%20#frag")
    assert environ_for(request)["QUERY_STRING"] == "a=1&b=%20"


def test_missing_query_and_uri_give_an_empty_query() -> None:
    request = Request(b"s", 1, "/x", {"METHOD": "GET", "VERSION": "HTTP/1.1"}, b"")
    environ = environ_for(request)
    assert environ["QUERY_STRING"] == ""
    assert environ["REQUEST_URI"] == "/x"
    assert_valid_environ(environ)


# ------------------------------------------------------------------ SERVER_NAME / PORT


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("example.com", "http", ("example.com", "80")),
        ("example.com", "https", ("example.com", "443")),
        ("example.com:8080", "http", ("example.com", "8080")),
        ("example.com:", "https", ("example.com", "443")),
        ("example.com:abc", "http", ("example.com", "80")),
        ("example.com:\u0668", "http", ("example.com", "80")),
        ("[::1]:8080", "http", ("[::1]", "8080")),
        ("[::1]", "https", ("[::1]", "443")),
        ("[::1]junk", "http", ("[::1]", "80")),
        ("[bad", "https", ("[bad]", "443")),
        (":8080", "http", ("localhost", "8080")),
        ("", "http", ("localhost", "80")),
        (None, "https", ("localhost", "80")),
        ("weird", "ftp", ("weird", "80")),
    ],
)
def test_server_address_from_host_header(
    host: str | None, scheme: str, expected: tuple[str, str]
) -> None:
    assert server_address(host, scheme, EnvironSettings()) == expected


def test_https_scheme_sets_url_scheme_and_port() -> None:
    environ = environ_for(make_request("/", URL_SCHEME="https", host="secure.example"))
    assert environ["wsgi.url_scheme"] == "https"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("secure.example", "443")


def test_missing_scheme_defaults_to_http() -> None:
    request = Request(b"s", 1, "/", {"METHOD": "GET", "host": "h"}, b"")
    assert environ_for(request)["wsgi.url_scheme"] == "http"


def test_repeated_host_uses_the_first_copy() -> None:
    environ = environ_for(make_request("/", host=["a.example:81", "b.example"]))
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("a.example", "81")
    assert environ["HTTP_HOST"] == "a.example:81, b.example"


# ------------------------------------------------------------------ REMOTE_ADDR


def test_remote_addr_falls_back_to_the_first_forwarded_for_entry() -> None:
    request = make_request("/", REMOTE_ADDR="", x__forwarded__for=" 10.0.0.1 , 10.0.0.2")
    assert environ_for(request)["REMOTE_ADDR"] == "10.0.0.1"


def test_remote_addr_prefers_mongrel2_over_forwarded_for() -> None:
    request = make_request("/", REMOTE_ADDR="127.0.0.9", x__forwarded__for="10.0.0.1")
    assert environ_for(request)["REMOTE_ADDR"] == "127.0.0.9"


def test_remote_addr_is_empty_when_unknown() -> None:
    request = Request(b"s", 1, "/", {"METHOD": "GET"}, b"")
    assert environ_for(request)["REMOTE_ADDR"] == ""


# ------------------------------------------------------------------ hostile headers


def test_header_names_with_underscores_are_dropped() -> None:
    request = make_request(
        "/",
        x_forwarded_for="6.6.6.6",
        content_type="evil/type",
        content_length="999",
        remote_user="admin",
        x__real__ip="1.2.3.4",
    )
    environ = environ_for(request)
    assert "HTTP_X_FORWARDED_FOR" not in environ
    assert "CONTENT_TYPE" not in environ
    assert "CONTENT_LENGTH" not in environ
    assert "HTTP_REMOTE_USER" not in environ
    assert "6.6.6.6" not in environ.values()
    assert environ["HTTP_X_REAL_IP"] == "1.2.3.4"


def test_dashed_and_underscored_spellings_cannot_collide() -> None:
    request = make_request("/", x__auth__user="alice", x_auth_user="root")
    assert environ_for(request)["HTTP_X_AUTH_USER"] == "alice"


@pytest.mark.parametrize(
    "name",
    [
        "METHOD",
        "FRAGMENT",
        "DOWNLOAD_CREDITS",
        "UPLOAD_STREAM",
        "X-Upper",
        "x foo",
        "x:foo",
        "caf\xe9",
        "x\r\ny",
        "",
        "x-mongrel2-upload-done",
        "x-mongrel2-upload-start",
        "x-mongrel2-upload-anything",
    ],
)
def test_non_client_or_invalid_header_names_never_become_http_keys(name: str) -> None:
    assert environ_key(name) is None
    environ = environ_for(make_request("/", **{name: "v"}))
    assert [key for key in environ if key.startswith("HTTP_")] == ["HTTP_HOST"]


def test_client_header_cannot_override_cgi_keys() -> None:
    request = make_request("/", **{"request_method": "PUT", "path-info": "/evil"})
    environ = environ_for(request)
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["PATH_INFO"] == "/"
    assert environ["HTTP_PATH_INFO"] == "/evil"


def test_repeated_content_length_and_type_use_the_first_copy() -> None:
    request = make_request(
        "/", **{"content-length": ["5", "7"], "content-type": ["text/a", "text/b"]}
    )
    environ = environ_for(request)
    assert (environ["CONTENT_LENGTH"], environ["CONTENT_TYPE"]) == ("5", "text/a")


def test_empty_list_content_length_is_left_out() -> None:
    environ = environ_for(make_request("/", **{"content-length": []}))
    assert "CONTENT_LENGTH" not in environ


def test_environ_key_maps_dashes_to_underscores() -> None:
    assert environ_key("accept-encoding") == "HTTP_ACCEPT_ENCODING"
    assert environ_key("x.weird~token") == "HTTP_X.WEIRD~TOKEN"


def test_header_key_cache_is_bounded_and_stays_correct_when_cleared() -> None:
    limit = environ_module._HEADER_KEYS_MAX  # the cache is private; its bound is the contract
    names = {f"x-h{i}": f"v{i}" for i in range(limit + 10)}
    environ = environ_for(make_request("/", **names))
    assert all(environ["HTTP_X_H" + name[3:]] == value for name, value in names.items())
    assert len(environ_module._HEADER_KEYS) <= limit
    after = environ_for(make_request("/", x_h1="no", **{"content-type": ["a/b", "c/d"]}))
    assert after["CONTENT_TYPE"] == "a/b"
    assert "HTTP_CONTENT_TYPE" not in after
    assert "HTTP_X_H1" not in after


def test_a_cached_header_name_is_joined_when_it_repeats() -> None:
    single = environ_for(make_request("/", cookie="a=1", accept="x"))
    repeated = environ_for(make_request("/", cookie=["a=1", "b=2"], accept=["x", "y"]))
    assert (single["HTTP_COOKIE"], single["HTTP_ACCEPT"]) == ("a=1", "x")
    assert (repeated["HTTP_COOKIE"], repeated["HTTP_ACCEPT"]) == ("a=1; b=2", "x, y")


def test_non_string_method_and_version_keep_the_request_properties() -> None:
    request = make_request("/", METHOD=["GET", "PUT"], VERSION=["HTTP/1.1"])
    environ = environ_for(request)
    assert environ["REQUEST_METHOD"] == request.method
    assert environ["SERVER_PROTOCOL"] == request.version


def test_repeated_mongrel2_values_use_the_first_copy() -> None:
    request = make_request(
        "/x",
        URL_SCHEME=["https", "http"],
        host=["example.com:8443", "other"],
        URI=["/x?u=1", "/y"],
        QUERY=["q=1", "q=2"],
        REMOTE_ADDR=["10.0.0.1", "10.0.0.2"],
    )
    environ = environ_for(request)
    assert environ["wsgi.url_scheme"] == "https"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8443")
    assert (environ["REQUEST_URI"], environ["QUERY_STRING"]) == ("/x?u=1", "q=1")
    assert environ["REMOTE_ADDR"] == "10.0.0.1"


def test_empty_remote_addr_falls_back_to_x_forwarded_for() -> None:
    request = make_request("/", REMOTE_ADDR="", x__forwarded__for="1.2.3.4, 5.6.7.8")
    assert environ_for(request)["REMOTE_ADDR"] == "1.2.3.4"

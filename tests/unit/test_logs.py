"""Logging setup and the access log line format."""

from __future__ import annotations

import io
import logging
import re

import pytest

from m2bridge.errors import ConfigError
from m2bridge.logs import AccessLog, request_line, setup_logging

LINE_RE = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+) '
    r'(?P<bytes>\d+) "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)" '
    r"(?P<ms>[0-9.]+)ms\n$"
)


def environ(**extra):
    base = {
        "REMOTE_ADDR": "10.0.0.7",
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/a/b?x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": "curl/8.0",
    }
    base.update(extra)
    return base


def test_access_line_is_combined_format_with_duration():
    stream = io.StringIO()
    AccessLog(stream).log(environ(), 200, 13, 0.0123)
    match = LINE_RE.match(stream.getvalue())
    assert match is not None, stream.getvalue()
    assert match["addr"] == "10.0.0.7"
    assert match["request"] == "GET /a/b?x=1 HTTP/1.1"
    assert (match["status"], match["bytes"]) == ("200", "13")
    assert (match["referer"], match["agent"]) == ("-", "curl/8.0")
    assert match["ms"] == "12.300"


def test_access_line_escapes_quotes_and_control_characters():
    stream = io.StringIO()
    AccessLog(stream).log(environ(HTTP_USER_AGENT='evil"\nagent'), 200, 0, 0.001)
    line = stream.getvalue()
    assert line.count("\n") == 1
    match = LINE_RE.match(line)
    assert match is not None, line
    assert match["agent"] == 'evil\\"\\nagent'


def test_cut_off_response_is_logged_with_status_zero():
    stream = io.StringIO()
    AccessLog(stream).log(environ(), None, 5, 0.0)
    match = LINE_RE.match(stream.getvalue())
    assert match is not None
    assert match["status"] == "0"


def test_request_line_rebuilds_the_uri_when_the_server_did_not_keep_it():
    env = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/x",
        "QUERY_STRING": "q=1",
        "SERVER_PROTOCOL": "HTTP/1.0",
    }
    assert request_line(env) == "POST /app/x?q=1 HTTP/1.0"


def test_open_dash_logs_to_stderr_and_none_disables():
    assert AccessLog.open(None) is None
    log = AccessLog.open("-")
    assert log is not None
    log.close()  # never closes stderr


def test_open_file_appends_lines(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    log.log(environ(), 404, 9, 0.002)
    log.close()
    match = LINE_RE.match(path.read_text())
    assert match is not None
    assert match["status"] == "404"


def test_open_unwritable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot open access log"):
        AccessLog.open(str(tmp_path / "missing" / "access.log"))


def test_setup_logging_rejects_an_unknown_level():
    with pytest.raises(ConfigError, match="unknown log level"):
        setup_logging("loud")


def test_setup_logging_sets_the_root_level():
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    try:
        setup_logging("warning")
        assert root.level == logging.WARNING
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]

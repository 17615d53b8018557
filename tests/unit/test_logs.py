"""Logging setup and the access log line format."""

from __future__ import annotations

import io
import logging
import re

import pytest

from m2bridge.errors import ConfigError
from m2bridge.logs import AccessLog, reopen_log_files, request_line, setup_logging

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


def test_request_line_rebuilds_the_uri_without_a_question_mark_when_there_is_no_query():
    env = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/x", "QUERY_STRING": ""}
    assert request_line(env) == "GET /x -"


class _BrokenStream(io.StringIO):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


@pytest.mark.parametrize(
    "error", [OSError(28, "No space left on device"), ValueError("I/O operation on closed file")]
)
def test_a_failed_access_log_write_is_logged_at_debug_and_not_raised(error, caplog):
    with caplog.at_level(logging.DEBUG, logger="m2bridge.access"):
        AccessLog(_BrokenStream(error)).log(environ(), 200, 1, 0.0)
    assert [r.getMessage() for r in caplog.records] == [f"access log write failed: {error}"]


def test_lines_within_one_second_share_the_timestamp(monkeypatch):
    monkeypatch.setattr("m2bridge.logs.time.time", lambda: 1_700_000_000.25)
    stream = io.StringIO()
    log = AccessLog(stream)
    log.log(environ(), 200, 1, 0.0)
    monkeypatch.setattr("m2bridge.logs.time.time", lambda: 1_700_000_000.75)
    monkeypatch.setattr("m2bridge.logs.time.strftime", lambda *args: pytest.fail("recomputed"))
    log.log(environ(), 200, 1, 0.0)
    first, second = (LINE_RE.match(line + "\n") for line in stream.getvalue().splitlines())
    assert first is not None
    assert second is not None
    assert first["time"] == second["time"]


def statuses(text: str) -> list[str]:
    """The status of each access log line (a line of another format is kept as is)."""
    lines = text.splitlines(keepends=True)
    return [match["status"] if (match := LINE_RE.match(line)) else line for line in lines]


def test_reopen_after_a_rename_writes_new_lines_to_a_new_file_at_the_path(tmp_path):
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    log.log(environ(), 200, 1, 0.0)
    path.rename(tmp_path / "access.log.1")
    log.reopen()
    log.log(environ(), 404, 2, 0.0)
    log.close()
    assert statuses((tmp_path / "access.log.1").read_text()) == ["200"]
    assert statuses(path.read_text()) == ["404"]


def test_reopen_leaves_stderr_alone():
    log = AccessLog.open("-")
    assert log is not None
    stream = log.stream
    log.reopen()
    assert log.stream is stream
    assert not stream.closed


def test_reopen_at_a_path_that_cannot_be_opened_keeps_the_old_file_and_warns(tmp_path, caplog):
    path = tmp_path / "logs" / "access.log"
    path.parent.mkdir()
    log = AccessLog.open(str(path))
    assert log is not None
    path.parent.rename(tmp_path / "old-logs")
    with caplog.at_level(logging.WARNING, logger="m2bridge.access"):
        log.reopen()
    log.log(environ(), 201, 1, 0.0)
    log.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot reopen access log {path}: No such file or directory"
    ]
    assert statuses((tmp_path / "old-logs" / "access.log").read_text()) == ["201"]


def test_reopen_log_files_says_so_and_reopens_the_access_log(tmp_path, caplog):
    path = tmp_path / "access.log"
    log = AccessLog.open(str(path))
    assert log is not None
    path.unlink()
    with caplog.at_level(logging.INFO, logger="m2bridge.worker"):
        reopen_log_files(log)
        reopen_log_files(None)
    log.close()
    assert path.exists()
    assert [r.getMessage() for r in caplog.records] == ["got USR1: reopening log files"] * 2

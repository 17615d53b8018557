"""JSON log lines, ``--access-log-format`` atoms (with the queue time) and the JSON access log."""

from __future__ import annotations

import io
import json
import logging
import os
import sys

import pytest

from m2bridge.errors import ConfigError
from m2bridge.logs import (
    ACCESS_ATOMS,
    AccessLog,
    JsonFormatter,
    access_log_format,
    iso_time,
    setup_logging,
)
from tests.unit.test_logs import environ as logs_environ


def environ(**extra):
    """test_logs' request environ, with a referer."""
    return logs_environ(**{"HTTP_REFERER": "http://r/", **extra})


def record(message="hello %s", args=("you",), exc_info=None, **extra):
    rec = logging.LogRecord("m2bridge.test", logging.WARNING, __file__, 1, message, args, exc_info)
    rec.__dict__.update(extra)
    return rec


# ------------------------------------------------------------------ JSON log lines


def test_json_log_line_has_time_level_logger_pid_and_message():
    entry = json.loads(JsonFormatter().format(record(created=1_700_000_000.5)))
    assert entry == {
        "time": "2023-11-14T22:13:20.500+00:00",
        "level": "WARNING",
        "logger": "m2bridge.test",
        "pid": os.getpid(),
        "message": "hello you",
    }


def test_json_log_line_carries_the_traceback_text():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rec = record(exc_info=sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["exc_info"].startswith("Traceback")
    assert "RuntimeError: boom" in entry["exc_info"]


def test_json_log_line_keeps_a_formatted_traceback_and_the_stack():
    entry = json.loads(JsonFormatter().format(record(exc_text="earlier", stack_info="Stack")))
    assert (entry["exc_info"], entry["stack_info"]) == ("earlier", "Stack")


@pytest.mark.parametrize(("log_format", "kind"), [("json", JsonFormatter), ("text", None)])
def test_setup_logging_installs_the_chosen_formatter(log_format, kind):
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    try:
        setup_logging("info", log_format)
        (handler,) = root.handlers
        assert type(handler.formatter) is (kind or logging.Formatter)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_setup_logging_rejects_an_unknown_format():
    with pytest.raises(ConfigError, match="unknown log format 'xml'"):
        setup_logging("info", "xml")


def test_iso_time_is_utc_to_the_millisecond():
    assert iso_time(0.25) == "1970-01-01T00:00:00.250+00:00"


# ------------------------------------------------------------------ --access-log-format


def formatted(fmt, env=None, status=200, body_bytes=13, duration=0.0123, queue=0.0042):
    stream = io.StringIO()
    AccessLog(stream, line_format=access_log_format(fmt)).log(
        environ() if env is None else env, status, body_bytes, duration, queue
    )
    return stream.getvalue()


@pytest.mark.parametrize(
    ("atom", "value"),
    [
        ("h", "10.0.0.7"), ("l", "-"), ("u", "-"), ("r", "GET /a/b?x=1 HTTP/1.1"),
        ("m", "GET"), ("U", "/a/b"), ("q", "x=1"), ("H", "HTTP/1.1"), ("s", "200"),
        ("b", "13"), ("B", "13"), ("f", "http://r/"), ("a", "curl/8.0"), ("T", "0"),
        ("D", "12300"), ("M", "12.300"), ("L", "0.012300"), ("Q", "4.200"),
        ("p", "<PID>"), ("{user-agent}i", "curl/8.0"), ("{REMOTE_ADDR}e", "10.0.0.7"),
    ],
)  # fmt: skip
def test_each_atom(atom, value):
    # the pid is filled in here: test ids must not differ between xdist's processes
    assert formatted(f"%({atom})s") == value.replace("PID", str(os.getpid())) + "\n"


def test_every_documented_atom_is_tested():
    tested = {"h", "l", "u", "r", "m", "U", "q", "H", "s", "b", "B", "f", "a", "T", "D", "M"}
    assert set(ACCESS_ATOMS) == tested | {"L", "Q", "p", "t"}


def test_time_atom_is_bracketed_like_the_default_line():
    line = formatted("%(t)s")
    assert line.startswith("[")
    assert line.rstrip("\n").endswith("]")


def test_empty_values_are_a_dash_and_a_cut_off_response_has_status_zero():
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/p", "SERVER_PROTOCOL": "HTTP/1.0"}
    assert formatted("%(h)s %(s)s %(b)s %(q)s %(a)s %({x-y}i)s", env, None, 0) == ("- 0 - - - -\n")


def test_path_and_query_fall_back_to_the_environ_without_a_raw_uri():
    env = {"SCRIPT_NAME": "/app", "PATH_INFO": "/x", "QUERY_STRING": "q=1"}
    assert formatted("%(U)s %(q)s", env) == "/app/x q=1\n"


def test_atoms_are_escaped_like_the_default_line():
    assert formatted("%(a)s", environ(HTTP_USER_AGENT='a"b')) == 'a\\"b\n'


def test_a_gunicorn_combined_format_works():
    fmt = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
    assert formatted(fmt).endswith('"GET /a/b?x=1 HTTP/1.1" 200 13 "http://r/" "curl/8.0" 12300\n')


@pytest.mark.parametrize(
    ("fmt", "message"),
    [("%(zz)s", "unknown atom %\\(zz\\)s"), ("%(h)d", "not a format"), ("%(h)s %", "not a format")],
)
def test_a_bad_format_is_refused(fmt, message):
    with pytest.raises(ValueError, match=message):
        access_log_format(fmt)


def test_open_passes_the_format_and_json_on(tmp_path):
    path = tmp_path / "a.log"
    log = AccessLog.open(str(path), "%(s)s %(Q)s")
    assert log is not None
    log.log(environ(), 201, 0, 0.0, 0.5)
    log.close()
    assert path.read_text() == "201 500.000\n"
    stderr_log = AccessLog.open("-", None, "json")
    assert stderr_log is not None
    assert stderr_log.as_json


# ------------------------------------------------------------------ JSON access log


def test_json_access_line_has_the_request_fields_and_the_queue_time(monkeypatch):
    monkeypatch.setattr("m2bridge.logs.time.time", lambda: 1_700_000_000.0)
    stream = io.StringIO()
    AccessLog(stream, as_json=True).log(environ(), 404, 9, 0.0021, 0.0007)
    line = stream.getvalue()
    assert line.endswith("}\n")
    assert line.count("\n") == 1
    assert json.loads(line) == {
        "time": "2023-11-14T22:13:20.000+00:00",
        "remote": "10.0.0.7",
        "method": "GET",
        "path": "/a/b",
        "query": "x=1",
        "protocol": "HTTP/1.1",
        "status": 404,
        "bytes": 9,
        "duration_ms": 2.1,
        "queue_ms": 0.7,
        "user_agent": "curl/8.0",
        "referer": "http://r/",
    }


def test_json_access_line_of_a_cut_off_response_without_headers():
    stream = io.StringIO()
    AccessLog(stream, as_json=True).log({"PATH_INFO": "/"}, None, 0, 0.0)
    entry = json.loads(stream.getvalue())
    assert (entry["status"], entry["remote"], entry["user_agent"]) == (0, None, None)
    assert (entry["path"], entry["query"], entry["queue_ms"]) == ("/", "", 0.0)

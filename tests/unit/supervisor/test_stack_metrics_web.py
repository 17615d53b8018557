"""The stack file's ``[metrics]`` and ``[web]`` tables."""

from __future__ import annotations

import sys

import pytest

from m2bridge import environment
from m2bridge.supervisor.stack import MetricsSpec
from tests.unit.supervisor.test_stack import MINIMAL, error_of, load


def test_no_metrics_table_serves_no_metrics(tmp_path):
    assert load(tmp_path, MINIMAL).metrics == MetricsSpec()


def test_metrics_table(tmp_path):
    (tmp_path / "token").write_text("t0k\n")
    stack = load(
        tmp_path,
        MINIMAL + '[metrics]\naddress = "[::1]:9100"\ntoken_file = "token"\n'
        'statsd = "127.0.0.1:8125"\nstatsd_prefix = "site"\nstatsd_interval = 2\n',
    )
    assert stack.metrics == MetricsSpec("[::1]:9100", "t0k", "127.0.0.1:8125", "site", 2.0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('address = "9100"', "metrics.address: expected HOST:PORT, got '9100'"),
        ('address = "h:99999"', "metrics.address: expected HOST:PORT, got 'h:99999'"),
        ('statsd = "h:"', "metrics.statsd: expected HOST:PORT, got 'h:'"),
        ('token_file = "missing"', "metrics.token_file: cannot read"),
        ("adress = 1", "metrics.adress: unknown key (did you mean 'address'?)"),
    ],
)
def test_metrics_errors_name_the_key(tmp_path, table, message):
    assert message in error_of(tmp_path, MINIMAL + f"[metrics]\n{table}\n")


def test_web_table_adds_a_console_watcher_that_stops_first(tmp_path):
    assert "web" not in load(tmp_path, MINIMAL).watchers
    assert load(tmp_path, MINIMAL + "[web]\n").watchers["web"].env == {}
    stack = load(tmp_path, MINIMAL + '[web]\ntoken = "w3b"\n')
    web = stack.watchers["web"]
    assert web.cmd == (
        "$(python)", "-m", "m2bridge", "web", "--endpoint", stack.control.endpoint,
        "--bind", "127.0.0.1:9180",
    )  # fmt: skip
    assert web.env == {environment.WEB_TOKEN: "w3b"}
    assert web.priority < stack.watchers["hello"].priority
    assert sys.executable  # $(python) is substituted at spawn time


def test_web_console_gets_the_control_token_of_a_tcp_endpoint(tmp_path):
    stack = load(
        tmp_path,
        MINIMAL + '[control]\nendpoint = "tcp://127.0.0.1:7000"\ntoken = "ctl"\n'
        '[web]\naddress = "127.0.0.1:8000"\nwatcher = "console"\n',
    )
    console = stack.watchers["console"]
    assert console.env == {environment.TOKEN: "ctl"}
    assert console.cmd[-1] == "127.0.0.1:8000"


def test_web_watcher_name_must_be_free(tmp_path):
    assert "web.watcher: a watcher named 'hello' exists already" in error_of(
        tmp_path, MINIMAL + '[web]\nwatcher = "hello"\n'
    )

"""The deployment file: supervisors by name, endpoint and token; every error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2bridge.cli.deployment import SupervisorAddress, load_deployment, parse_deployment
from m2bridge.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployment.toml"
    path.write_text(text)
    return path


def test_supervisors_keep_their_order_names_endpoints_and_tokens(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "b.token").write_text("from-file\n")
    path = write(
        tmp_path,
        """
[[supervisor]]
name = "a"
endpoint = "tcp://10.0.0.1:5555"
token = "inline"

[[supervisor]]
name = "b"
endpoint = "tcp://10.0.0.2:5555"
token_file = "secrets/b.token"

[[supervisor]]
endpoint = "ipc:///run/m2bridge/c/m2bridge.ctl"
""",
    )
    assert load_deployment(path) == [
        SupervisorAddress("a", "tcp://10.0.0.1:5555", "inline"),
        SupervisorAddress("b", "tcp://10.0.0.2:5555", "from-file"),
        SupervisorAddress(
            "ipc:///run/m2bridge/c/m2bridge.ctl", "ipc:///run/m2bridge/c/m2bridge.ctl"
        ),
    ]


def test_relative_ipc_path_starts_from_the_files_directory(tmp_path):
    data = {"supervisor": [{"name": "local", "endpoint": "ipc://run/m2bridge.ctl"}]}
    assert parse_deployment(data, tmp_path) == [
        SupervisorAddress("local", f"ipc://{tmp_path}/run/m2bridge.ctl")
    ]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "a"}], r"supervisor\[1\]\.endpoint: required"),
        ([{"endpoint": "http://x"}], r"supervisor\[1\]\.endpoint: expected ipc:// or tcp://"),
        ([{"endpoint": 5}], r"supervisor\[1\]\.endpoint: expected a non-empty string"),
        ([{"endpoint": "tcp://h:1"}], r"supervisor\[1\]\.token: a tcp:// endpoint needs a token"),
        (
            [{"endpoint": "tcp://h:1", "token": "t", "token_file": "f"}],
            r"supervisor\[1\]\.token_file: give token or token_file, not both",
        ),
        (
            [{"endpoint": "tcp://h:1", "token_file": "missing"}],
            r"supervisor\[1\]\.token_file: cannot read .*missing",
        ),
        (
            [{"endpoint": "ipc:///a", "tokne": "t"}],
            r"supervisor\[1\]\.tokne: unknown key \(did you mean 'token'\?\)",
        ),
        (
            [{"name": "a", "endpoint": "ipc:///a"}, {"name": "a", "endpoint": "ipc:///b"}],
            r"supervisor\[2\]\.name: 'a' is already the name of another",
        ),
        (["not a table"], r"supervisor\[1\]: expected a table"),
    ],
)
def test_a_bad_supervisor_table_names_its_key(tmp_path, entries, message):
    with pytest.raises(ConfigError, match=message):
        parse_deployment({"supervisor": entries}, tmp_path)


@pytest.mark.parametrize(
    "data", [{}, {"supervisor": []}, {"supervisor": {"name": "a"}}], ids=["none", "empty", "table"]
)
def test_a_deployment_without_supervisor_tables_is_refused(tmp_path, data):
    with pytest.raises(ConfigError, match=r"^supervisor: expected one or more \[\[supervisor\]\]"):
        parse_deployment(data, tmp_path)


def test_an_unknown_top_level_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^supervisors: unknown key \(did you mean 'supervisor'"):
        parse_deployment({"supervisors": []}, tmp_path)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"--deployment: cannot read .*nope\.toml"):
        load_deployment(tmp_path / "nope.toml")
    bad_toml = write(tmp_path, "[[supervisor]\n")
    with pytest.raises(ConfigError, match=r"deployment\.toml: not valid TOML"):
        load_deployment(bad_toml)
    bad_key = write(tmp_path, '[[supervisor]]\nendpoint = "udp://x"\n')
    with pytest.raises(ConfigError, match=r"deployment\.toml: supervisor\[1\]\.endpoint: expected"):
        load_deployment(bad_key)

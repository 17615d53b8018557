"""``m2bridge relay`` and ``serve --relay`` options: parsing, validation, supervised children."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from m2bridge.cli import main, make_parser
from m2bridge.cli.relay import handler_specs
from m2bridge.cli.serve import UsageError, build_config, child_argv, relay_argv


def parse(*argv: str) -> argparse.Namespace:
    return make_parser().parse_args(list(argv))


def test_relay_takes_repeated_send_specs_and_a_bind():
    args = parse("relay", "--send-spec", "tcp://127.0.0.1:1", "--send-spec", "ipc:///tmp/b",
                 "--bind", "ipc:///tmp/r")  # fmt: skip
    assert args.send_specs == ["tcp://127.0.0.1:1", "ipc:///tmp/b"]
    assert args.bind == "ipc:///tmp/r"


@pytest.mark.parametrize(
    "argv",
    [
        ("relay", "--send-spec", "tcp://127.0.0.1:1"),
        ("relay", "--send-spec", "http://x", "--bind", "ipc:///tmp/r"),
    ],
    ids=["no bind", "bad endpoint"],
)
def test_relay_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_serve_relay_needs_only_recv_specs():
    config = build_config(parse("serve", "a:app", "--relay", "ipc:///tmp/r",
                                "--recv-spec", "tcp://127.0.0.1:2"))  # fmt: skip
    assert config.relay == ("ipc:///tmp/r",)
    assert config.recv_specs == ("tcp://127.0.0.1:2",)
    assert len(config.send_specs) == 1  # one relay source per recv_spec


@pytest.mark.parametrize(
    "extra", [("--send-spec", "tcp://127.0.0.1:1", "--recv-spec", "tcp://127.0.0.1:2"),
              ("--bind", "127.0.0.1:8000")],
    ids=["with --send-spec", "with --bind"],
)  # fmt: skip
def test_serve_relay_refuses_send_specs_and_the_fd_path(extra):
    with pytest.raises(UsageError, match="--relay replaces --send-spec"):
        build_config(parse("serve", "a:app", "--relay", "ipc:///tmp/r", *extra))


def test_supervised_children_get_the_relay_and_no_send_spec():
    config = build_config(parse("serve", "a:app", "--relay", "ipc:///tmp/r", "--workers", "2",
                                "--recv-spec", "tcp://127.0.0.1:2"))  # fmt: skip
    argv = child_argv(config)
    assert "--send-spec" not in argv
    assert argv[argv.index("--relay") + 1] == "ipc:///tmp/r"
    assert argv[argv.index("--recv-spec") + 1] == "tcp://127.0.0.1:2"
    assert build_config(parse(*argv[3:-4])).relay == ("ipc:///tmp/r",)


def test_serve_one_relay_per_recv_spec_pairs_them_in_order():
    front_a, front_b = "tcp://10.0.0.1:9999", "tcp://10.0.0.2:9999"
    config = build_config(parse("serve", "a:app", "--relay", front_a, "--recv-spec", "tcp://a:1",
                                "--relay", front_b, "--recv-spec", "tcp://b:1"))  # fmt: skip
    assert config.relay == (front_a, front_b)
    assert config.send_specs == (front_a, front_b)
    argv = child_argv(replace(config, workers=2))
    assert build_config(parse(*argv[3:-4])).relay == (front_a, front_b)


@pytest.mark.parametrize(
    "relays", [2, 3], ids=["two relays, three recv_specs", "three relays, two recv_specs"]
)
def test_serve_relays_neither_one_nor_one_per_recv_spec_is_a_usage_error(relays):
    argv = [w for i in range(relays) for w in ("--relay", f"ipc:///tmp/r{i}")]
    argv += [w for i in range(3 if relays == 2 else 2) for w in ("--recv-spec", f"ipc:///p{i}")]
    with pytest.raises(UsageError, match="one per --recv-spec"):
        build_config(parse("serve", "a:app", *argv))


DEMO = str(Path(__file__).resolve().parents[3] / "mongrel2_conf" / "examples" / "demo.conf")


def test_relay_reads_the_send_and_recv_spec_of_a_handler_from_a_config():
    args = parse("relay", "--config", DEMO, "--handler", "/", "--bind", "ipc:///r")
    assert handler_specs(args) == (["tcp://127.0.0.1:9997"], ["tcp://127.0.0.1:9996"])


def test_relay_recv_specs_are_optional_one_per_send_spec():
    bind = ("--bind", "ipc:///r")
    assert handler_specs(parse("relay", "--send-spec", "ipc:///s", *bind)) == (["ipc:///s"], [])
    both = parse("relay", "--send-spec", "ipc:///s", "--recv-spec", "ipc:///p", *bind)
    assert handler_specs(both) == (["ipc:///s"], ["ipc:///p"])


def test_workers_n_gives_its_relay_the_recv_specs():
    config = build_config(parse("serve", "a:app", "--workers", "2", "--send-spec", "tcp://h:1",
                                "--recv-spec", "tcp://h:2"))  # fmt: skip
    argv = relay_argv(replace(config, relay=("ipc:///tmp/r",)))
    assert argv[argv.index("--recv-spec") + 1] == "tcp://h:2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--bind", "ipc:///r"), "either --send-spec or --config"),
        (("--config", DEMO, "--bind", "ipc:///r"), "go together"),
        (("--config", DEMO, "--handler", "/", "--send-spec", "ipc:///s", "--bind", "ipc:///r"),
         "either --send-spec or --config"),
        (("--config", DEMO, "--handler", "/", "--recv-spec", "ipc:///p", "--bind", "ipc:///r"),
         "comes from --config"),
        (("--send-spec", "ipc:///s", "--send-spec", "ipc:///t", "--recv-spec", "ipc:///p",
          "--bind", "ipc:///r"), "one --recv-spec per --send-spec"),
    ],
    ids=["neither", "config without handler", "both", "recv with config", "recv count"],
)  # fmt: skip
def test_relay_spec_sources_that_contradict_are_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        handler_specs(parse("relay", *argv))


def test_relay_with_an_unknown_handler_exits_1_with_one_line(capsys):
    assert main(["relay", "--config", DEMO, "--handler", "/nope/", "--bind", "ipc:///r"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("m2bridge relay: error:")
    assert err.count("\n") == 1

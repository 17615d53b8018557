"""``python -m bench`` options, bad input and re-rendering (bench/__main__.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bench import report
from bench.__main__ import config_from, main, make_parser
from tests.helpers.bench_records import sample_result


def test_quick_then_explicit_options_shape_the_config() -> None:
    args = make_parser().parse_args(["--quick", "--apps", "hello,post", "--rounds", "3"])
    config = config_from(args)
    assert config.quick
    assert config.apps == ("hello", "post")
    assert config.rounds == 3
    assert config.duration_s == 1
    assert not config.direct
    full = config_from(make_parser().parse_args(["--cycles", "1,200", "--direct"]))
    assert full.concurrencies == (1, 200)
    assert full.duration_s == 5
    assert full.direct


def test_m2_relay_is_no_longer_a_stack_to_choose_and_the_relay_flag_is_gone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert config_from(make_parser().parse_args(["--stacks", "m2-zmq"])).stacks == ("m2-zmq",)
    assert config_from(make_parser().parse_args([])).stacks[0] == "m2-zmq"
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--stacks", "m2-zmq,m2-relay"])
    assert "unknown stack m2-relay" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--no-relay"])
    assert "unrecognized arguments: --no-relay" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--apps", "hello,nope"], "unknown app nope"),
        (["--stacks", "apache"], "unknown stack apache"),
        (["--cycles", "10,x"], "not a list of integers"),
        (["--cycles", "0"], "integers >= 1"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_problem(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        make_parser().parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_zero_rounds_is_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        config_from(make_parser().parse_args(["--rounds", "0"]))


def test_report_only_rerenders_json_markdown_and_html(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    report.write_json(sample_result(), source)
    baseline = tmp_path / "old.json"
    report.write_json(sample_result(), baseline)
    out = tmp_path / "out"
    assert main(["--report-only", str(source), "--diff", str(baseline), "--out", str(out)]) == 0
    stem = out / "2026-11-23-abc1234"
    assert stem.with_suffix(".json").exists()
    assert "## Change from `old.json`" in stem.with_suffix(".md").read_text()
    assert "<svg" in stem.with_suffix(".html").read_text()


def test_missing_or_foreign_input_is_an_error_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    assert main(["--report-only", str(tmp_path / "absent.json"), "--out", str(tmp_path)]) == 1
    assert "absent.json" in caplog.text
    foreign = tmp_path / "foreign.json"
    foreign.write_text("[1, 2]")
    assert main(["--report-only", str(foreign), "--out", str(tmp_path)]) == 1
    assert "not a m2bridge-bench/1 result" in caplog.text


def test_an_old_result_with_m2_zmq_straight_on_mongrel2_rerenders_and_diffs_with_a_note(
    tmp_path: Path,
) -> None:
    old = sample_result()
    del old["config"]["relay"]  # written while m2-zmq had no relay
    baseline = tmp_path / "old.json"
    report.write_json(old, baseline)
    out = tmp_path / "out"
    assert main(["--report-only", str(baseline), "--out", str(out)]) == 0
    new = tmp_path / "new.json"
    report.write_json(sample_result(), new)
    assert main(["--report-only", str(new), "--diff", str(baseline), "--out", str(out)]) == 0
    md = (out / "2026-11-23-abc1234.md").read_text()
    assert "the baseline's m2-zmq ran without `m2bridge relay`" in md

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


def test_callgrind_is_on_for_full_runs_off_for_quick_ones_unless_asked() -> None:
    def config(*argv: str) -> tuple[bool, tuple[int, ...]]:
        c = config_from(make_parser().parse_args(list(argv)))
        return c.callgrind, c.callgrind_requests

    assert config() == (True, (500, 2500))
    assert config("--no-callgrind") == (False, (500, 2500))
    assert config("--quick") == (False, (500, 2500))
    assert config("--quick", "--callgrind", "--callgrind-requests", "100,400") == (True, (100, 400))


def test_the_new_peers_are_stacks_to_choose() -> None:
    args = make_parser().parse_args(["--stacks", "uwsgi-keepalive,granian,m2-zmq"])
    assert config_from(args).stacks == ("uwsgi-keepalive", "granian", "m2-zmq")
    assert {"uwsgi", "uwsgi-keepalive", "granian"} <= set(
        config_from(make_parser().parse_args([])).stacks
    )


def test_a_run_with_callgrind_but_no_valgrind_stops_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    found = {"wrk": "/usr/bin/wrk"}
    monkeypatch.setattr("bench.__main__.shutil.which", found.get)
    started: list[object] = []
    monkeypatch.setattr("bench.__main__.run_benchmark", started.append)
    caplog.set_level(logging.ERROR)
    assert main(["--out", str(tmp_path)]) == 1
    assert "valgrind not found" in caplog.text
    assert "--no-callgrind" in caplog.text
    assert started == []


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
        (["--callgrind-requests", "500"], "not SMALL,LARGE"),
        (["--callgrind-requests", "900,300"], "need 0 < SMALL < LARGE"),
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


def test_a_result_from_before_the_callgrind_figure_rerenders_and_diffs_with_one(
    tmp_path: Path,
) -> None:
    old = sample_result(callgrind=False)
    for key in ("worker_instructions", "reported"):
        del old[key]  # written before either existed
    for target in old["targets"]:
        del target["issue"]
    baseline = tmp_path / "old.json"
    report.write_json(old, baseline)
    out = tmp_path / "out"
    assert main(["--report-only", str(baseline), "--out", str(out)]) == 0
    assert "not measured in this run" in (out / "2026-11-23-abc1234.md").read_text()
    new = tmp_path / "new.json"
    report.write_json(sample_result(), new)
    assert main(["--report-only", str(new), "--diff", str(baseline), "--out", str(out)]) == 0
    md = (out / "2026-11-23-abc1234.md").read_text()
    assert "## Change from `old.json`" in md
    assert "| m2-zmq worker | 166,449 | 58,000 |" in md
    assert "Worker instructions per hello request (callgrind):" not in md  # the baseline has none


def test_diff_of_two_results_with_the_figure_compares_instructions(tmp_path: Path) -> None:
    old = sample_result()
    old["worker_instructions"]["per_request"] = {"1": 170000.0, "32": 116000.0}
    baseline = tmp_path / "old.json"
    report.write_json(old, baseline)
    new = tmp_path / "new.json"
    report.write_json(sample_result(), new)
    out = tmp_path / "out"
    assert main(["--report-only", str(new), "--diff", str(baseline), "--out", str(out)]) == 0
    md = (out / "2026-11-23-abc1234.md").read_text()
    assert (
        "Worker instructions per hello request (callgrind): in flight 1 170,000 -> 166,449 "
        "(-2.1%), in flight 32 116,000 -> 58,000 (-50.0%)." in md
    )

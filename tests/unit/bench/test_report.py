"""Result document, Markdown, HTML/SVG rendering and workload checks (bench/report, html, svg)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from bench import html, report, svg, workload
from bench.cycles import STACKS, BenchConfig
from tests.helpers.bench_records import MACHINE, idle_sample, make_record, proc, sample_result


def test_result_carries_raw_data_and_derived_summary_ratios_and_targets() -> None:
    result = sample_result()
    assert result["schema"] == report.SCHEMA
    assert report.result_name(result) == "2026-11-23-abc1234"
    assert result["summary"]["hello"]["m2-zmq"]["50"]["rps"] == 12000.0
    assert result["ratios"]["hello"]["m2-zmq"]["50"]["gunicorn-gevent"]["rps"] == pytest.approx(3.0)
    names = [t["name"] for t in result["targets"]]
    assert "hello c=50: m2-zmq / gunicorn-gevent req/s" in names
    assert json.loads(json.dumps(result)) == result


def test_markdown_shows_targets_cells_resources_and_failures() -> None:
    text = report.markdown(sample_result())
    assert "| #15 | hello c=50: m2-zmq / gunicorn-gevent req/s | 3.00 | >= 2 | yes |" in text
    assert "| #6 | hello: m2-zmq worker RSS after the run (MB) | 30.00 | <= 40 | yes |" in text
    assert "| hello c=50: m2-zmq / granian req/s | - |" in text
    assert "| m2-zmq | 9000 (x3.00) p50 1.2 p99 5.0 ms | 12000 (x3.00) p50 1.2 p99 5.0 ms |" in text
    assert "4000 (x1.00) p50 30.0 p99 120.0 ms, 7 err" in text
    assert (
        "| m2-zmq | mongrel2 40, worker 60 | 83 (mongrel2 33, worker 50) | 30 | 190 "
        "| supervisor 0.5, worker 60.0, mongrel2 40.0 |" in text
    )
    assert "- uwsgi/hello: did not start: boom" in text
    assert "`m2-zmq` supervisor stats: `app` workers served 15 / 6 requests (2 errors)" in text
    assert "mongrel2` workers" not in text
    assert "wall time 10 s" in text
    # machine 190% - (worker 60 + mongrel2 40) - wrk 30 = 60% for the m2-zmq runs, 160% else
    assert "other processes used a median 110% CPU" in text


def test_markdown_puts_the_callgrind_figure_beside_m2_zmqs_hello_req_s() -> None:
    text = report.markdown(sample_result())
    assert (
        "| worker instructions per request (callgrind, hello, tnetstring) | in flight 1 "
        "| in flight 32 | m2-zmq hello req/s | m2-zmq CPU us/request |" in text
    )
    assert "| m2-zmq worker | 166,449 | 58,000 | 12000 (c=50) | 83 |" in text
    assert "under valgrind-3.19.0" in text
    assert "instructions for 2,500 requests minus those for 500" in text
    assert (
        "| #15 | hello: m2-zmq worker instructions per request, in flight 1 "
        "(callgrind; a wait per request) | 166,449 | <= 120,000 | **no** |" in text
    )
    assert "in flight 32 (callgrind; requests wait queued) | 58,000 | <= 60,000 | yes |" in text


def test_a_result_without_the_callgrind_figure_renders_and_says_it_was_not_measured() -> None:
    result = sample_result(callgrind=False)
    assert "worker_instructions" not in result or result["worker_instructions"] is None
    text = report.markdown(result)
    assert "Worker instructions per request: not measured in this run" in text
    assert "| m2-zmq worker |" not in text
    assert "in flight 1 (callgrind; a wait per request) | - | <= 120,000 | not measured |" in text
    page = html.render(result)
    assert "not measured in this run" in page
    assert "<th>in flight 1</th>" not in page


def test_reported_ratios_include_granian_from_the_records() -> None:
    result = sample_result()
    result["records"] += [
        make_record("hello", "granian", 0, c, rps, p99=2.5)
        for c, rps in ((10, 18000.0), (50, 24000.0))
    ]
    result.update(report.derived(result["records"], result["idle"]))
    lines = report.reported_table(result)
    assert "| hello c=50: m2-zmq / granian req/s | 0.50 |" in lines
    assert "| hello c=50: m2-zmq / granian p99 latency | 2.00 |" in lines


def test_a_stack_answering_few_connections_at_once_is_flagged_under_its_app_table() -> None:
    result = sample_result()
    for c, rps, mean in ((10, 30000.0, 0.1), (50, 29000.0, 0.07)):
        record = make_record("hello", "uwsgi-keepalive", 0, c, rps)
        record["latency_ms"]["mean"] = mean
        result["records"].append(record)
    result["config"]["stacks"].append("uwsgi-keepalive")
    result.update(report.derived(result["records"], result["idle"]))
    assert report.starved_lines(result, "hello") == [
        "- `uwsgi-keepalive` answered few connections at once (req/s x mean latency): c=50 ~2. "
        "The other connections waited unanswered, so its req/s and latencies are those of that "
        "many clients."
    ]  # c=10: ~3 of 10 is above a quarter
    assert "- `uwsgi-keepalive` answered few connections" in report.markdown(result)
    assert "uwsgi-keepalive answered few connections" in html.render(result)


def test_load_json_refreshes_derived_parts_and_refuses_other_files(tmp_path: Path) -> None:
    result = sample_result()
    del result["summary"], result["targets"]
    path = tmp_path / "r.json"
    report.write_json(result, path)
    loaded = report.load_json(path)
    assert loaded["summary"]["hello"]["gunicorn-gevent"]["10"]["rps"] == 3000.0
    assert loaded["targets"]
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a m2bridge-bench/1 result"):
        report.load_json(other)


def test_html_page_embeds_one_svg_chart_per_view_and_escapes_text() -> None:
    page = html.render(sample_result(), diff_md="| a <b> |")
    assert page.count("<svg") == 6
    assert "<th>in flight 32</th>" in page
    assert "<td>166,449</td>" in page
    assert "<th>ratio (reported, no bound)</th>" in page
    assert "supervised &lt;zmq&gt;" in page
    assert "a &lt;b&gt;" in page
    for chunk in page.split("<svg")[1:]:
        ET.fromstring("<svg" + chunk.split("</svg>")[0] + "</svg>")


def test_table_html_marks_missed_targets() -> None:
    table = html.table_html(["| a | b |", "|---|---|", "| x | **no** |"])
    assert '<td class="no">no</td>' in table
    assert "<th>a</th>" in table


def test_line_chart_skips_missing_points_and_scales_to_a_round_maximum() -> None:
    series = [svg.Series("s", [10.0, None, 30.0]), svg.Series("t", [None, None, None])]
    chart = svg.line_chart("title & more", ["1", "10", "50"], series, "req/s")
    root = ET.fromstring(chart)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}circle")) == 2
    assert "title &amp; more" in chart
    assert ">50<" in chart  # top gridline label: nice_max(30) = 50


def test_nice_max_rounds_up_to_1_2_2_5_5() -> None:
    assert svg.nice_max(0) == 1.0
    assert svg.nice_max(7) == 10.0
    assert svg.nice_max(180) == 200.0
    assert svg.nice_max(2100) == 2500.0
    assert svg.nice_max(41000) == 50000.0


def test_log_scale_spans_whole_decades_and_clips_zero() -> None:
    scale = svg.Scale.for_values([0.0, 2.0, 450.0], log=True)
    assert (scale.bottom, scale.top) == (1.0, 1000.0)
    assert scale.ticks() == [1.0, 10.0, 100.0, 1000.0]
    assert scale.y(0.0) == scale.y(1.0) == svg.TOP + svg.PLOT_H
    assert scale.y(1000.0) == svg.TOP
    assert scale.y(10.0) == pytest.approx(svg.TOP + svg.PLOT_H * 2 / 3)
    chart = svg.line_chart("p99", ["a", "b"], [svg.Series("s", [2.0, 450.0])], "ms", log=True)
    assert "ms (log)" in chart
    assert ">1k<" in chart


def test_log_scale_of_one_value_still_has_a_decade() -> None:
    scale = svg.Scale.for_values([5.0], log=True)
    assert scale.top / scale.bottom == 10.0


def test_bar_chart_has_a_bar_per_present_value() -> None:
    chart = svg.bar_chart(
        "cpu", ["a", "b"], [svg.Series("w", [1.0, None]), svg.Series("m", [2.0, 3.0])], "%"
    )
    assert ET.fromstring(chart) is not None
    assert chart.count("<rect") == 3


def test_canned_answers_pass_the_workload_checks() -> None:
    for name in workload.WORKLOADS:
        assert workload.answer_problem(name, 200, workload.canned_body(name)) is None


@pytest.mark.parametrize(
    ("name", "status", "body", "problem"),
    [
        ("hello", 500, b"", "status 500"),
        ("hello", 200, b"Hello", "body"),
        ("big", 200, b"x" * 10, "10 bytes instead of 262144"),
        ("io", 200, b"nope", "body"),
        ("post", 200, b"not json", "body"),
        ("post", 200, b'{"size": 5}', "server read 5 bytes instead of 102400"),
    ],
)
def test_wrong_answers_are_explained(name: str, status: int, body: bytes, problem: str) -> None:
    found = workload.answer_problem(name, status, body)
    assert found is not None
    assert problem in found


def relay_result() -> dict[str, Any]:
    """m2-zmq and m2-relay side by side, as runs measured them before the relay became the
    one multi-worker topology (such results are still re-rendered and diffed)."""
    config = BenchConfig(
        apps=("hello",),
        stacks=("m2-zmq", "m2-relay", "gunicorn-gevent"),
        concurrencies=(10, 50),
        rounds=1,
    )
    relayed = [proc("worker", 50.0, 30.0), proc("relay", 20.0, 20.0), proc("mongrel2", 30.0, 15.0)]
    records = [
        make_record("hello", stack, 0, c, rps, procs=procs)
        for stack, rps, procs in (("m2-zmq", 8000.0, []), ("m2-relay", 6000.0, relayed))
        for c in (10, 50)
    ]
    records += [make_record("hello", "gunicorn-gevent", 0, c, 4000.0) for c in (10, 50)]
    stats = {"watchers": [{"name": "app", "processes": [{"served": 7, "errors": 1}]}]}
    raw = {
        "date": "2026-11-23T06:00:00+00:00",
        "commit": "abc1234",
        "stacks": {
            "m2-zmq": "direct pull",
            "m2-relay": "with `m2bridge relay`",
            "gunicorn-gevent": "g",
        },
        "apps": {"hello": "handlers.hello:app"},
        "records": records,
        "idle": [idle_sample("hello", "m2-relay", relayed)],
        "failures": [],
        "supervisor_stats": [{"app": "hello", "stack": "m2-relay", "stats": stats}],
        "notes": [],
    }
    return report.build_result(config, MACHINE, raw)


def test_an_old_results_m2_relay_is_reported_beside_m2_zmq_in_every_table_but_no_target() -> None:
    result = relay_result()
    text = report.markdown(result)
    zmq_row = text.index("| m2-zmq | 8000 (x2.00)")
    assert text.index("| m2-relay | 6000 (x1.50)") > zmq_row
    assert (
        "| m2-relay | mongrel2 30, relay 20, worker 50 | 167 (mongrel2 50, relay 33, worker 83) |"
        in text
    )
    assert "- `m2-relay`: with `m2bridge relay`" in text
    assert "`m2-relay` supervisor stats: `app` workers served 7 requests (1 errors)" in text
    assert not any("m2-relay" in t["name"] for t in result["targets"])
    rows = [line.split(" |")[0] for line in report.resources_table(result, "hello")[2:]]
    assert rows == ["| m2-zmq", "| m2-relay", "| gunicorn-gevent"]  # the plan's order


def test_html_charts_draw_an_old_results_m2_relay_in_its_own_colour() -> None:
    page = html.render(relay_result())
    assert page.count("<svg") == 6
    assert ">m2-relay<" in page
    zmq, relay = (svg.color_for(s, STACKS) for s in ("m2-zmq", "m2-relay"))
    assert zmq != relay
    assert relay in page
    assert len({svg.color_for(s, STACKS) for s in STACKS}) == len(STACKS)

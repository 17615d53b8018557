"""The HTML report: the Markdown tables plus inline SVG charts, one self-contained page.

Per app: req/s per cycle per stack, p99 per cycle, the latency percentiles at the middle cycle,
CPU per role at the highest cycle, and RSS per process after the run (FunkLoad's report shape).
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from html import escape
from typing import Any

from . import report
from .cycles import STACKS, stacks_for
from .svg import PALETTE, Series, bar_chart, color_for, line_chart

ROLES = ("worker", "master", "mongrel2", "relay", "supervisor", "wrk")
STYLE = """
body { font-family: sans-serif; max-width: 1340px; margin: 1em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.no { color: #b00; font-weight: bold; }
"""


def table_html(md_lines: list[str]) -> str:
    """Turn a Markdown table (header, rule, rows) into an HTML table."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md_lines]
    head, body = rows[0], rows[2:]
    out = ["<table><tr>", *[f"<th>{escape(h)}</th>" for h in head], "</tr>"]
    for row in body:
        cells = []
        for c in row:
            text = escape(c.replace("**", "").replace("`", ""))
            cls = ' class="no"' if c.startswith("**") else ""
            cells.append(f"<td{cls}>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _stacks(result: dict[str, Any], app: str) -> list[str]:
    present = result["summary"].get(app, {})
    return [s for s in stacks_for(app, result["config"]["stacks"]) if s in present]


def _per_cycle(result: dict[str, Any], app: str, pick: Any) -> list[Series]:
    levels = [str(c) for c in result["config"]["concurrencies"]]
    series = []
    for stack in _stacks(result, app):
        cells = result["summary"][app][stack]
        values = [pick(cells[c]) if c in cells else None for c in levels]
        series.append(Series(stack, values, color_for(stack, STACKS)))
    return series


def throughput_charts(result: dict[str, Any], app: str) -> list[str]:
    """req/s, p99 and server CPU per request, per cycle, one line per stack."""
    labels = [f"c={c}" for c in result["config"]["concurrencies"]]
    rps = _per_cycle(result, app, lambda s: s["rps"])
    p99 = _per_cycle(result, app, lambda s: s["latency_ms"].get("p99"))
    cost = _per_cycle(result, app, lambda s: s.get("cpu_us_per_request"))
    return [
        line_chart(f"{app}: requests/s (median)", labels, rps, "req/s"),
        line_chart(f"{app}: p99 latency (median)", labels, p99, "ms", log=True),
        line_chart(f"{app}: server CPU per request (median)", labels, cost, "us"),
    ]


def latency_chart(result: dict[str, Any], app: str) -> str:
    """Latency percentiles of every stack at the middle cycle."""
    levels = result["config"]["concurrencies"]
    mid = str(levels[len(levels) // 2])
    stacks = _stacks(result, app)
    series = []
    for i, pct in enumerate(("p50", "p90", "p95", "p99")):
        values = [
            result["summary"][app][s].get(mid, {}).get("latency_ms", {}).get(pct) for s in stacks
        ]
        series.append(Series(pct, values, PALETTE[i]))
    return bar_chart(f"{app}: latency percentiles at c={mid}", stacks, series, "ms")


def resource_charts(result: dict[str, Any], app: str) -> list[str]:
    """CPU % per role at the highest cycle, and the largest RSS per role after the run."""
    top = str(max(result["config"]["concurrencies"]))
    stacks = _stacks(result, app)
    cpu, rss = [], []
    for i, role in enumerate(ROLES):
        cpu_values = [_cpu(result, app, s, top, role) for s in stacks]
        rss_values = [_rss_after(result, app, s, role) for s in stacks]
        if any(v is not None for v in cpu_values):
            cpu.append(Series(role, cpu_values, PALETTE[i]))
        if any(v is not None for v in rss_values):
            rss.append(Series(role, rss_values, PALETTE[i]))
    return [
        bar_chart(f"{app}: CPU % per role at c={top} (100 = 1 core)", stacks, cpu, "CPU %"),
        bar_chart(f"{app}: RSS per process after the run", stacks, rss, "MB"),
    ]


def _cpu(result: dict[str, Any], app: str, stack: str, c: str, role: str) -> float | None:
    cell = result["summary"][app][stack].get(c)
    if cell is None:
        return None
    if role == "wrk":
        return float(cell["loadgen_cpu_pct"])
    value = cell["cpu_pct"].get(role)
    return None if value is None else float(value)


def _rss_after(result: dict[str, Any], app: str, stack: str, role: str) -> float | None:
    values = [
        float(p["rss_mb"])
        for sample in result["idle"]
        if (sample["app"], sample["stack"], sample["phase"]) == (app, stack, "after")
        for p in sample["procs"]
        if p["role"] == role
    ]
    return max(values) if values else None


def render(result: dict[str, Any], diff_md: str = "") -> str:
    """The whole page."""
    name = report.result_name(result)
    body = [f"<h1>m2bridge benchmark {escape(name)}</h1>"]
    body += [f"<p>{escape(line)}</p>" for line in report.header_lines(result)[2:] if line]
    body += ["<h2>Targets</h2>", table_html(report.targets_table(result))]
    body.append(table_html(report.reported_table(result)))
    body.append("<h2>Worker instructions per request (callgrind)</h2>")
    body.append(f"<p>{escape(report.instructions_note(result).replace('`', ''))}</p>")
    if result.get("worker_instructions"):
        body.append(table_html(report.instructions_table(result)))
    stacks = "".join(
        f"<li><b>{escape(name)}</b>: {escape(how)}</li>" for name, how in result["stacks"].items()
    )
    body.append(f"<h2>Stacks</h2><ul>{stacks}</ul>")
    for app in result["config"]["apps"]:
        if app not in result["summary"]:
            continue
        body.append(f"<h2>{escape(app)}</h2>")
        charts = throughput_charts(result, app)
        charts += [latency_chart(result, app), *resource_charts(result, app)]
        body.append('<div class="charts">' + "".join(charts) + "</div>")
        body.append(table_html(report.app_table(result, app)))
        body += [
            f"<p>{escape(line[2:].replace('`', ''))}</p>"
            for line in report.starved_lines(result, app)
        ]
        body.append(table_html(report.resources_table(result, app)))
    if diff_md:
        body.append(f"<h2>Diff</h2><pre>{escape(diff_md)}</pre>")
    notes = "".join(f"<li>{escape(n)}</li>" for n in result["notes"])
    body.append(f"<h2>Method and limits</h2><ul>{notes}</ul>")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(name)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )

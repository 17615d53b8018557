"""The result document (JSON) and its Markdown summary.

``build_result`` adds the derived parts (``summary``, ``ratios``, ``targets``, ``reported``) to
the raw records, so a report can always be re-rendered from the JSON alone (``--report-only``).
The callgrind figure (``worker_instructions``) is raw data; results written before it existed
have none and render without it.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import cycles, targets

SCHEMA = "m2bridge-bench/1"
METHOD_NOTES = (
    "wrk (Debian) runs on the same 2 cores as the servers (1 thread, keep-alive, "
    "`--latency`; a Lua `done()` hook prints the percentiles); its CPU is in every record.",
    "Stacks serve the same app module with the same number of worker processes; all stacks "
    "of one app run at the same time on their own ports, idle except the one under load.",
    "Each cycle is a warm-up wrk run, then the measured run. Inside a cycle the stacks run one "
    "after the other, in an order rotated each round; numbers are medians over rounds.",
    "Ratios are paired: stack / baseline in the same round and cycle, median over rounds.",
    "Other processes (other engineers' test suites) may have loaded the machine; the 1-minute "
    "load average before each cycle is recorded.",
)


def build_result(
    config: cycles.BenchConfig,
    machine: dict[str, Any],
    raw: dict[str, Any],
) -> dict[str, Any]:
    """The full result document from the run's raw parts (records, idle, failures, stacks)."""
    records = raw["records"]
    return {
        "schema": SCHEMA,
        "date": raw["date"],
        "commit": raw["commit"],
        "machine": machine,
        "config": config.to_dict(),
        "stacks": raw["stacks"],
        "apps": raw["apps"],
        "notes": list(METHOD_NOTES) + list(raw.get("notes", [])),
        "failures": raw["failures"],
        "records": records,
        "idle": raw["idle"],
        "supervisor_stats": raw.get("supervisor_stats", []),
        "worker_instructions": raw.get("worker_instructions"),
        **derived(records, raw["idle"], raw.get("worker_instructions")),
    }


def derived(
    records: list[dict[str, Any]],
    idle: list[dict[str, Any]],
    instructions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Summary, paired ratios, target outcomes and reported ratios, recomputed from the raw data."""
    return {
        "summary": cycles.summarize(records),
        "ratios": cycles.ratios(records),
        "targets": [o.to_dict() for o in targets.evaluate(records, idle, instructions)],
        "reported": [f.to_dict() for f in targets.reported(records)],
    }


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write the result with stable key order and a trailing newline."""
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")


def load_json(path: Path) -> dict[str, Any]:
    """Read a result file and refresh its derived parts (older files may lack them).

    Raises:
        ValueError: the file is not a result of this benchmark.
    """
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} result")
    data.update(derived(data["records"], data.get("idle", []), data.get("worker_instructions")))
    return data


def result_name(result: dict[str, Any]) -> str:
    """``<date>-<commit>``, the stem of the result files."""
    return f"{str(result['date'])[:10]}-{result['commit']}"


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def targets_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines: each target, its issue, its value, its bound and whether it was met."""
    lines = ["| issue | target | measured | bound | met |", "|---|---|---:|---:|:---:|"]
    marks = {True: "yes", False: "**no**", None: "not measured"}
    for t in result["targets"]:
        detail = f" ({t['detail']})" if t["detail"] else ""
        spec = ",.0f" if t["bound"] >= 1000 else ".2f"
        lines.append(
            f"| #{t.get('issue', 6)} | {t['name']}{detail} | {_fmt(t['value'], spec)} "
            f"| {t['op']} {t['bound']:,g} | {marks[t['ok']]} |"
        )
    return lines


def reported_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines: the ratios reported without a bound (granian, uWSGI with close)."""
    lines = ["| ratio (reported, no bound) | measured |", "|---|---:|"]
    for f in result.get("reported", []):
        detail = f" ({f['detail']})" if f["detail"] else ""
        lines.append(f"| {f['name']}{detail} | {_fmt(f['value'], '.2f')} |")
    return lines


INSTRUCTIONS_TITLE = "worker instructions per request (callgrind, hello, tnetstring)"


def instructions_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines: the worker's instructions per hello request by in-flight bound, beside
    m2-zmq's hello req/s and server CPU per request of the same run (empty when not measured)."""
    block = result.get("worker_instructions")
    if not block:
        return []
    levels = sorted(block["per_request"], key=int)
    head = f"| {INSTRUCTIONS_TITLE} | " + " | ".join(f"in flight {k}" for k in levels)
    lines = [
        head + " | m2-zmq hello req/s | m2-zmq CPU us/request |",
        "|---|" + "---:|" * (len(levels) + 2),
    ]
    cells = [_fmt(block["per_request"][k], ",.0f") for k in levels]
    rps, cost = _hello_cell(result)
    lines.append(f"| m2-zmq worker | {' | '.join(cells)} | {rps} | {cost} |")
    return lines


def _hello_cell(result: dict[str, Any]) -> tuple[str, str]:
    """m2-zmq's median hello req/s and CPU us per request at c=50 (or the nearest cycle)."""
    cells = result["summary"].get("hello", {}).get("m2-zmq", {})
    if not cells:
        return "-", "-"
    c = min(cells, key=lambda k: (abs(int(k) - 50), -int(k)))
    cell = cells[c]
    return f"{_fmt(cell['rps'])} (c={c})", _fmt(cell.get("cpu_us_per_request"))


def instructions_note(result: dict[str, Any]) -> str:
    """One line on how the callgrind figure was measured, or why there is none."""
    block = result.get("worker_instructions")
    if not block:
        return "Worker instructions per request: not measured in this run (`--callgrind`)."
    small, large = block["requests"]
    return (
        f"The worker (`m2bridge serve --relay`, {block['app']} app) behind a fake relay, under "
        f"{block['valgrind']} "
        f"(`bench/worker_cost.py`, {block['protocol']}): instructions for {large:,} requests "
        f"minus those for {small:,}, per request; in flight 1 the worker waits for every "
        f"request, in flight 32 they wait queued. {block['seconds']:.0f} s after the cycles."
    )


def app_table(result: dict[str, Any], app: str) -> list[str]:
    """Markdown lines: per stack and cycle, median req/s (x gunicorn-gevent) and p50/p99."""
    levels = result["config"]["concurrencies"]
    head = "| stack | " + " | ".join(f"c={c}" for c in levels) + " |"
    lines = [head, "|---|" + "---:|" * len(levels)]
    summary = result["summary"].get(app, {})
    for stack in cycles.stacks_for(app, result["config"]["stacks"]):
        if stack not in summary:
            continue
        cells = [_cell_text(result, app, stack, c) for c in levels]
        lines.append(f"| {stack} | " + " | ".join(cells) + " |")
    return lines


def _cell_text(result: dict[str, Any], app: str, stack: str, c: int) -> str:
    s = result["summary"][app][stack].get(str(c))
    if s is None:
        return "-"
    ratio = result["ratios"].get(app, {}).get(stack, {}).get(str(c), {})
    x = ratio.get("gunicorn-gevent", {}).get("rps")
    lat = s["latency_ms"]
    err = f", {s['errors']} err" if s["errors"] else ""
    return (
        f"{_fmt(s['rps'])} (x{_fmt(x, '.2f')}) "
        f"p50 {_fmt(lat.get('p50'), '.1f')} p99 {_fmt(lat.get('p99'), '.1f')} ms{err}"
    )


def starved_lines(result: dict[str, Any], app: str) -> list[str]:
    """Markdown bullets: stacks that answered far fewer connections at once than wrk opened."""
    lines = []
    summary = result["summary"].get(app, {})
    for stack in cycles.stacks_for(app, result["config"]["stacks"]):
        cells = summary.get(stack, {})
        found = [
            f"c={c} ~{served:.0f}"
            for c in result["config"]["concurrencies"]
            if (served := cells.get(str(c), {}).get("served_connections")) is not None
            and served < cycles.STARVED_FRACTION * c
        ]
        if found:
            lines.append(
                f"- `{stack}` answered few connections at once (req/s x mean latency): "
                f"{', '.join(found)}. The other connections waited unanswered, so its req/s and "
                "latencies are those of that many clients."
            )
    return lines


def resources_table(result: dict[str, Any], app: str) -> list[str]:
    """Markdown lines: CPU % per role at the highest cycle, and RSS per process after the run."""
    top = str(max(result["config"]["concurrencies"]))
    lines = [
        f"| stack | CPU % at c={top} (per role) | CPU us/request | wrk CPU % | machine CPU % "
        "| idle CPU % after | RSS MB after |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    summary = result["summary"].get(app, {})
    order = [s for s in cycles.stacks_for(app, result["config"]["stacks"]) if s in summary]
    for stack in order + sorted(set(summary) - set(order)):
        s = summary[stack].get(top)
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in s["cpu_pct"].items()) if s else "-"
        wrk = _fmt(s["loadgen_cpu_pct"]) if s else "-"
        busy = _fmt(s.get("machine_cpu_pct")) if s else "-"
        idle_cpu, rss = _idle_text(result, app, stack)
        per_req = _cost_text(s) if s else "-"
        lines.append(f"| {stack} | {cpu} | {per_req} | {wrk} | {busy} | {idle_cpu} | {rss} |")
    return lines


def _cost_text(cell: dict[str, Any]) -> str:
    """``152 (mongrel2 40, worker 112)``: CPU us per request, in total and by busy role."""
    total = cell.get("cpu_us_per_request")
    roles = cell.get("cpu_us_per_request_by_role", {})
    parts = [f"{role} {value:.0f}" for role, value in roles.items() if value and value >= 0.5]
    return _fmt(total) + (f" ({', '.join(parts)})" if len(parts) > 1 else "")


def _idle_text(result: dict[str, Any], app: str, stack: str) -> tuple[str, str]:
    for sample in result["idle"]:
        if (sample["app"], sample["stack"], sample["phase"]) == (app, stack, "after"):
            procs = sample["procs"]
            cpu = ", ".join(f"{p['role']} {p['cpu_pct']:.1f}" for p in procs)
            rss = ", ".join(f"{p['role']} {p['rss_mb']:.0f}" for p in procs)
            return cpu, rss
    return "-", "-"


def interference_line(result: dict[str, Any], app: str) -> str:
    """How much CPU other processes took while this app's cycles ran (noise indicator)."""
    rows = [r for r in result["records"] if r["app"] == app]
    others = cycles.median(cycles.others_cpu(r) for r in rows)
    load = cycles.median(float(r["loadavg"][0]) for r in rows if r.get("loadavg"))
    return (
        f"During these runs other processes used a median {_fmt(others)}% CPU "
        f"(of 200%); median 1-min load average before a run {_fmt(load, '.2f')}."
    )


def supervisor_lines(result: dict[str, Any], app: str) -> list[str]:
    """Markdown bullets: requests served (and errors) per worker, from the supervisor's stats."""
    lines = []
    for entry in result.get("supervisor_stats", []):
        if entry["app"] != app:
            continue
        for watcher in entry["stats"].get("watchers", []):
            procs = [p for p in watcher.get("processes", []) if p.get("served") is not None]
            if not procs:
                continue
            served = " / ".join(str(p["served"]) for p in procs)
            errors = sum(int(p.get("errors") or 0) for p in procs)
            lines.append(
                f"- `{entry['stack']}` supervisor stats: `{watcher['name']}` workers served "
                f"{served} requests ({errors} errors)"
            )
    return lines


def header_lines(result: dict[str, Any]) -> list[str]:
    """Title, machine and run shape."""
    cfg, m = result["config"], result["machine"]
    return [
        f"# m2bridge benchmark {result_name(result)}",
        "",
        f"Machine: {m['cpus']} x {m['cpu_model']}, Python {m['python']}, {m['wrk']}, "
        f"mongrel2 {m['mongrel2']}, " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        "",
        f"Run: {cfg['workers']} workers per stack, cycles {cfg['concurrencies']} connections, "
        f"{cfg['duration_s']} s each after a {cfg['warmup_s']} s warm-up, {cfg['rounds']} rounds"
        + (" (--quick)" if cfg["quick"] else "")
        + f"; load average at start {m['loadavg_at_start']}.",
    ]


def markdown(result: dict[str, Any]) -> str:
    """The Markdown summary of a result."""
    cfg = result["config"]
    out = [
        *header_lines(result),
        "",
        "## Targets",
        "",
        *targets_table(result),
        "",
        *reported_table(result),
        "",
        "## Worker instructions per request (callgrind)",
        "",
        instructions_note(result),
        *(["", *instructions_table(result)] if result.get("worker_instructions") else []),
        "",
        "## Stacks",
        "",
        *[f"- `{name}`: {how}" for name, how in result["stacks"].items()],
    ]
    for app in cfg["apps"]:
        out += ["", f"## {app}: median req/s (x gunicorn-gevent, paired), latency", ""]
        out += [interference_line(result, app), ""]
        out += app_table(result, app)
        starved = starved_lines(result, app)
        out += ["", *starved] if starved else []
        out += ["", *resources_table(result, app)]
        extra = supervisor_lines(result, app)
        out += ["", *extra] if extra else []
    out += ["", "## Method and limits", "", *[f"- {note}" for note in result["notes"]]]
    if result["failures"]:
        out += [
            "",
            "## Failures",
            "",
            *[f"- {f['stack']}/{f['app']}: {f['error']}" for f in result["failures"]],
        ]
    return "\n".join(out) + "\n"

"""What changed between a baseline result JSON and a new one (``--diff OLD.json``).

Both absolute numbers and the paired ratios against gunicorn-gevent are compared: absolute
req/s move with the machine and its load, the same-run ratios much less.
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .cycles import Record, paired_ratio, summarize

BASE = "gunicorn-gevent"


def _change(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def _cells(result: Record) -> set[tuple[str, str, int]]:
    return {(r["app"], r["stack"], int(r["concurrency"])) for r in result.get("records", [])}


def diff_results(old: Record, new: Record) -> list[dict[str, Any]]:
    """One row per (app, stack, concurrency) present in both results, in a stable order."""
    old_sum, new_sum = summarize(old["records"]), summarize(new["records"])
    rows = []
    for app, stack, c in sorted(_cells(old) & _cells(new)):
        before, after = old_sum[app][stack][str(c)], new_sum[app][stack][str(c)]
        old_ratio = paired_ratio(old["records"], app, stack, BASE, c)
        new_ratio = paired_ratio(new["records"], app, stack, BASE, c)
        rows.append(
            {
                "app": app,
                "stack": stack,
                "concurrency": c,
                "old_rps": before["rps"],
                "new_rps": after["rps"],
                "rps_change_pct": _change(before["rps"], after["rps"]),
                "old_p99": before["latency_ms"].get("p99"),
                "new_p99": after["latency_ms"].get("p99"),
                "old_ratio": old_ratio,
                "new_ratio": new_ratio,
                "ratio_change_pct": _change(old_ratio, new_ratio),
            }
        )
    return rows


def _had_relay(result: Record) -> bool:
    """Whether this run's ``m2-zmq`` ran behind ``m2bridge relay``: its config says
    ``"relay": true`` (every run since the relay became the one multi-worker topology, and
    the runs before ``m2-relay`` existed); no key means workers straight on Mongrel2 (the runs
    that measured the relay as ``m2-relay``)."""
    return result.get("config", {}).get("relay") is True


def topology_notes(old: Record, new: Record) -> list[str]:
    """One line when ``m2-zmq`` ran with the relay in one result and without it in the other."""
    old_relay, new_relay = _had_relay(old), _had_relay(new)
    had_zmq = any(stack == "m2-zmq" for _, stack, _ in _cells(old) & _cells(new))
    if old_relay == new_relay or not had_zmq:
        return []
    if old_relay:
        return [
            "Note: the baseline's m2-zmq ran with `m2bridge relay` (its config says "
            "`relay: true`); the new run's m2-zmq ran without it."
        ]
    return [
        "Note: the baseline's m2-zmq ran without `m2bridge relay` (workers straight on "
        "Mongrel2, no longer a supported topology: docs/decisions/0001-multi-worker-topology.md); "
        "the new run's m2-zmq ran with it (its config says `relay: true`), the topology the "
        "baseline measured as m2-relay."
    ]


def instruction_notes(old: Record, new: Record) -> list[str]:
    """One line comparing the worker's callgrind instructions per request, when both runs have
    the figure (runs before it, or with ``--no-callgrind``, have none: no line)."""
    before = (old.get("worker_instructions") or {}).get("per_request", {})
    after = (new.get("worker_instructions") or {}).get("per_request", {})
    common = sorted(before.keys() & after.keys(), key=int)
    if not common:
        return []
    parts = [
        f"in flight {k} {before[k]:,.0f} -> {after[k]:,.0f} "
        f"({_num(_change(before[k], after[k]), '+.1f')}%)"
        for k in common
    ]
    return ["Worker instructions per hello request (callgrind): " + ", ".join(parts) + "."]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_diff(
    rows: list[dict[str, Any]], old_name: str, new_name: str, notes: Sequence[str] = ()
) -> str:
    """A Markdown table of ``diff_results`` rows, after ``notes`` (one paragraph each)."""
    lines = [
        f"## Change from `{old_name}` to `{new_name}`",
        "",
        f"req/s medians, p99 medians (ms), and the paired ratio vs {BASE} (same run).",
        "",
        *[line for note in notes for line in (note, "")],
        "| app | stack | c | req/s old | req/s new | change | p99 old | p99 new "
        "| ratio old | ratio new | ratio change |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['app']} | {r['stack']} | {r['concurrency']} "
            f"| {_num(r['old_rps'], '.0f')} | {_num(r['new_rps'], '.0f')} "
            f"| {_num(r['rps_change_pct'], '+.1f')}% "
            f"| {_num(r['old_p99'], '.2f')} | {_num(r['new_p99'], '.2f')} "
            f"| {_num(r['old_ratio'], '.2f')} | {_num(r['new_ratio'], '.2f')} "
            f"| {_num(r['ratio_change_pct'], '+.1f')}% |"
        )
    if not rows:
        lines.append("| (no cell in common) | | | | | | | | | | |")
    return "\n".join(lines) + "\n"

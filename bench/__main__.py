"""``python -m bench``: run the benchmark, write ``bench/results/<date>-<commit>.{json,md,html}``.

``--quick`` is the development run (about 2 min); ``--diff OLD.json`` adds the change since a
baseline; ``--report-only RESULT.json`` re-renders the Markdown and HTML of an earlier run.
A full run ends with the worker's instructions per hello request under callgrind
(``--no-callgrind`` leaves it out, ``--quick --callgrind`` adds it).
Installed, ``m2bridge bench`` runs it and writes into ``./bench-results``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from . import cycles, diff, html, report
from .workload import CHECKOUT, PACKAGE, WORKLOADS

log = logging.getLogger("bench")

#: Where results go: ``bench/results`` in a checkout; installed (``m2bridge bench``), the
#: directory ``bench-results`` under the current one (never inside site-packages).
RESULTS = Path(__file__).resolve().parent / "results" if CHECKOUT else Path("bench-results")


def _names(text: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}"
        )
    return names


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be integers >= 1")
    return levels


def _requests(text: str) -> tuple[int, int]:
    parts = text.split(",")
    try:
        small, large = (int(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not SMALL,LARGE: {text!r}") from None
    if not 0 < small < large:
        raise argparse.ArgumentTypeError("need 0 < SMALL < LARGE")
    return small, large


def make_parser() -> argparse.ArgumentParser:
    prog = "python -m bench" if PACKAGE == "bench" else "m2bridge bench"
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--quick", action="store_true", help="short development run (about 2 min)")
    p.add_argument("--apps", type=lambda t: _names(t, cycles.APPS, "app"))
    p.add_argument("--stacks", type=lambda t: _names(t, cycles.STACKS, "stack"))
    p.add_argument("--cycles", type=_levels, help="connections per cycle, e.g. 1,10,50")
    p.add_argument("--duration", type=int, help="seconds per measured cycle")
    p.add_argument("--warmup", type=int, help="seconds of warm-up before each cycle")
    p.add_argument("--rounds", type=int, help="passes over the cycles (medians over rounds)")
    p.add_argument("--workers", type=int, help="worker processes per stack")
    p.add_argument("--idle", type=float, help="seconds of the idle CPU/RSS windows")
    p.add_argument(
        "--direct",
        action="store_true",
        help="start m2-zmq (with its relay) and fd as plain processes (`m2bridge serve`, "
        "`m2bridge relay`), without `m2bridge up`",
    )
    p.add_argument(
        "--callgrind",
        action=argparse.BooleanOptionalAction,
        help="after the cycles, count the m2bridge worker's instructions per hello request "
        "under callgrind, in flight 1 and 32 (needs valgrind; about 1.5 min; default: on, "
        "off with --quick)",
    )
    p.add_argument(
        "--callgrind-requests",
        type=_requests,
        metavar="SMALL,LARGE",
        help="requests of the two callgrind runs (default "
        + ",".join(map(str, cycles.CALLGRIND_REQUESTS))
        + "); the figure is their difference",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the result files")
    p.add_argument("--diff", type=Path, metavar="OLD.json", help="baseline to compare with")
    p.add_argument("--report-only", type=Path, metavar="RESULT.json", help="re-render only")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def config_from(args: argparse.Namespace) -> cycles.BenchConfig:
    """The run's configuration: defaults, ``--quick``, then every explicit option."""
    config = cycles.quick_config() if args.quick else cycles.BenchConfig()
    overrides: dict[str, Any] = {
        "apps": args.apps,
        "stacks": args.stacks,
        "concurrencies": args.cycles,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "workers": args.workers,
        "idle_s": args.idle,
        "callgrind": args.callgrind,
        "callgrind_requests": args.callgrind_requests,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config = replace(config, direct=args.direct)
    if min(config.duration_s, config.warmup_s, config.rounds, config.workers) < 1:
        raise ValueError("--duration, --warmup, --rounds and --workers must be >= 1")
    return config


def write_reports(result: dict[str, Any], out: Path, baseline: Path | None) -> Path:
    """Write JSON, Markdown and HTML; with a baseline, append the diff. Returns the JSON path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / report.result_name(result)
    diff_md = ""
    if baseline is not None:
        old = report.load_json(baseline)
        rows = diff.diff_results(old, result)
        notes = diff.topology_notes(old, result) + diff.instruction_notes(old, result)
        diff_md = diff.format_diff(rows, baseline.name, stem.name, notes)
    json_path = stem.with_suffix(".json")
    report.write_json(result, json_path)
    md = report.markdown(result) + ("\n" + diff_md if diff_md else "")
    stem.with_suffix(".md").write_text(md)
    stem.with_suffix(".html").write_text(html.render(result, diff_md))
    return json_path


def run_benchmark(config: cycles.BenchConfig) -> dict[str, Any]:
    """Run every app and build the result document (imports the process-side modules)."""
    from . import machine, runner  # here: --report-only needs no psutil or processes

    info = machine.describe()
    commit = machine.commit()
    log.info("about %.0f s of benchmark ahead", cycles.estimate_seconds(config))
    started = dt.datetime.now(dt.UTC)
    run = runner.execute(config, lambda line: print(line, flush=True))
    raw = {
        "date": started.isoformat(timespec="seconds"),
        "commit": commit,
        "stacks": run.stack_how,
        "apps": {app: WORKLOADS[app].app + WORKLOADS[app].path for app in config.apps},
        "records": run.records,
        "idle": run.idle,
        "failures": run.failures,
        "supervisor_stats": run.supervisor_stats,
        "worker_instructions": run.worker_instructions,
        "notes": [
            f"wall time {(dt.datetime.now(dt.UTC) - started).total_seconds():.0f} s",
            *run.notes,
        ],
    }
    return report.build_result(config, info, raw)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run like Ctrl-C: stacks stopped, partial results written."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.report_only:
            result = report.load_json(args.report_only)
        else:
            config = config_from(args)
            if shutil.which("wrk") is None:
                log.error("wrk not found: apt-get install wrk")
                return 1
            if config.callgrind and shutil.which("valgrind") is None:
                log.error("valgrind not found: apt-get install valgrind, or pass --no-callgrind")
                return 1
            signal.signal(signal.SIGTERM, _interrupt)
            result = run_benchmark(config)
        path = write_reports(result, args.out, args.diff)
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    print("\n".join(report.targets_table(result)))
    print(f"results: {path} (.md, .html beside it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

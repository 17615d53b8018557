"""The stack's numbers in Prometheus' exposition format, made by ``prometheus_client``.

One source: a scrape runs the ``stats`` and ``status`` control commands (what ``ctl stats
--json`` and ``ctl status --json`` print) and ``dstats`` (the supervisor itself), and
``StackCollector`` turns their data into metric families; nothing is counted twice.
Per watcher: processes, restarts by reason, requests (served, in flight, 5xx, 503 rejected,
504 timed out), queue-time and app-time histograms; per process (labels ``watcher`` and
``wid``, the stable slot): CPU seconds, RSS, open fds, age, requests; Mongrel2's open
connections and tasks from its control port; the stack's health.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from m2bridge.supervisor.http_endpoint import Reply

Snapshot = Callable[[str], dict[str, Any]]
#: What ``generate_latest`` writes: the text format 0.0.4, which every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StackCollector(Collector):
    """Collects on each scrape from ``run_command(name)`` (the supervisor's command runner)."""

    def __init__(self, run_command: Snapshot) -> None:
        self.run_command = run_command

    def collect(self) -> Iterator[Metric]:
        stats = self.run_command("stats")
        status = self.run_command("status")
        yield from supervisor_families(self.run_command("dstats"))
        yield from watcher_families(stats["watchers"], status["watchers"])
        yield from process_families(stats["watchers"])
        yield from mongrel2_families(status.get("mongrel2", []))
        healthy = GaugeMetricFamily("m2bridge_healthy", "1 when /healthz answers 200")
        healthy.add_metric([], 1.0 if status.get("healthy") else 0.0)
        yield healthy


def supervisor_families(data: dict[str, Any]) -> Iterator[Metric]:
    yield _gauge("m2bridge_supervisor_resident_memory_bytes", "Supervisor RSS", data.get("rss"))
    yield _gauge("m2bridge_supervisor_open_fds", "Supervisor open fds", data.get("fds"))
    cpu = CounterMetricFamily("m2bridge_supervisor_cpu_seconds", "Supervisor CPU time (s)")
    if data.get("cpu_seconds") is not None:
        cpu.add_metric([], float(data["cpu_seconds"]))
    yield cpu
    yield _gauge("m2bridge_supervisor_age_seconds", "Seconds since start", data.get("age"))


def watcher_families(
    watchers: list[dict[str, Any]], statuses: list[dict[str, Any]]
) -> Iterator[Metric]:
    labels = ["watcher"]
    running = GaugeMetricFamily("m2bridge_watcher_processes", "Processes running", labels=labels)
    wanted = GaugeMetricFamily(
        "m2bridge_watcher_desired_processes", "Processes asked for", labels=labels
    )
    for row in statuses:
        running.add_metric([row["name"]], row["running"])
        wanted.add_metric([row["name"]], row["numprocesses"])
    yield running
    yield wanted
    restarts = CounterMetricFamily(
        "m2bridge_watcher_restarts",
        "Processes replaced, by reason: exit, crash, flapping, max_requests, max_rss, reload, hung",
        labels=["watcher", "reason"],
    )
    for watcher in watchers:
        for reason, count in watcher.get("restarts", {}).items():
            restarts.add_metric([watcher["name"], reason], count)
    yield restarts
    yield from request_families([w for w in watchers if w.get("totals") is not None])


#: ``totals`` key -> (metric name, help, counter?)
REQUEST_METRICS = {
    "served": ("m2bridge_requests", "Requests answered (any status)", True),
    "in_flight": ("m2bridge_requests_in_flight", "Requests being served now", False),
    "errors": ("m2bridge_requests_5xx", "Requests answered 5xx or cut off by an error", True),
    "rejected": ("m2bridge_requests_rejected", "Requests refused with 503 (overload)", True),
    "timed_out": ("m2bridge_requests_timed_out", "Requests cancelled by --timeout (504)", True),
}
HISTOGRAMS = {
    "queue_time": ("m2bridge_request_queue_seconds", "From arrival in the worker to the app call"),
    "app_time": ("m2bridge_request_app_seconds", "From the app call to the end of the reply"),
}


def request_families(watchers: list[dict[str, Any]]) -> Iterator[Metric]:
    for key, (name, text, counter) in REQUEST_METRICS.items():
        kind = CounterMetricFamily if counter else GaugeMetricFamily
        family = kind(name, text, labels=["watcher"])
        for watcher in watchers:
            family.add_metric([watcher["name"]], watcher["totals"][key])
        yield family
    for key, (name, text) in HISTOGRAMS.items():
        histogram = HistogramMetricFamily(name, text, labels=["watcher"])
        for watcher in watchers:
            latency = watcher["latency"]
            buckets = cumulative_buckets(latency["buckets"], latency[key]["counts"])
            histogram.add_metric([watcher["name"]], buckets, latency[key]["sum"])
        yield histogram


def cumulative_buckets(bounds: list[float], counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts -> Prometheus' cumulative ``(le, count)`` pairs, ending with +Inf."""
    pairs: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip([*bounds, math.inf], counts, strict=True):
        running += count
        pairs.append(("+Inf" if math.isinf(bound) else repr(float(bound)), running))
    return pairs


PROCESS_METRICS = {
    "cpu_seconds": ("m2bridge_process_cpu_seconds", "CPU time (s)", True),
    "rss": ("m2bridge_process_resident_memory_bytes", "Resident memory", False),
    "fds": ("m2bridge_process_open_fds", "Open file descriptors", False),
    "age": ("m2bridge_process_age_seconds", "Seconds since start", False),
    "pid": ("m2bridge_process_pid", "Process id", False),
    "served": ("m2bridge_process_requests", "Requests answered", True),
    "in_flight": ("m2bridge_process_requests_in_flight", "Requests being served", False),
}


def process_families(watchers: list[dict[str, Any]]) -> Iterator[Metric]:
    """Per process; a slot being replaced shows its new process only (one series per slot)."""
    rows = [(w["name"], p) for w in watchers for p in _one_per_slot(w["processes"])]
    for key, (name, text, counter) in PROCESS_METRICS.items():
        kind = CounterMetricFamily if counter else GaugeMetricFamily
        family = kind(name, text, labels=["watcher", "wid"])
        for watcher, process in rows:
            if process.get(key) is not None:
                family.add_metric([watcher, str(process["wid"])], float(process[key]))
        yield family


def _one_per_slot(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    slots: dict[int, dict[str, Any]] = {}
    for process in processes:
        kept = slots.get(process["wid"])
        if kept is None or kept["state"] == "stopping":
            slots[process["wid"]] = process
    return list(slots.values())


def mongrel2_families(probes: list[dict[str, Any]]) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "m2bridge_mongrel2_up", "1 when Mongrel2's control port answers", labels=["watcher"]
    )
    connections = GaugeMetricFamily(
        "m2bridge_mongrel2_connections", "Open connections (status what=net)", labels=["watcher"]
    )
    tasks = GaugeMetricFamily(
        "m2bridge_mongrel2_tasks", "Tasks (status what=tasks)", labels=["watcher"]
    )
    for probe in probes:
        up.add_metric([probe["watcher"]], 1.0 if probe.get("answering") else 0.0)
        if probe.get("connections") is not None:
            connections.add_metric([probe["watcher"]], probe["connections"])
        if probe.get("tasks") is not None:
            tasks.add_metric([probe["watcher"]], probe["tasks"])
    yield up
    yield connections
    yield tasks


def _gauge(name: str, text: str, value: object) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text)
    if isinstance(value, int | float):
        family.add_metric([], float(value))
    return family


def make_routes(run_command: Snapshot) -> dict[str, Callable[[], Reply]]:
    """``/metrics`` and ``/healthz`` over the supervisor's command runner."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StackCollector(run_command))

    def metrics() -> Reply:
        return Reply(200, CONTENT_TYPE, generate_latest(registry))

    def healthz() -> Reply:
        status = run_command("status")
        body = {"healthy": status["healthy"], "problems": status["problems"]}
        code = 200 if status["healthy"] else 503
        return Reply(code, "application/json", json.dumps(body).encode() + b"\n")

    return {"/metrics": metrics, "/healthz": healthz}

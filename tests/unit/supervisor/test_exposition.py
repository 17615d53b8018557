"""The Prometheus exposition of the stats/status/dstats data, read back with
prometheus_client's own parser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from m2bridge.supervisor.counters import RESTART_REASONS
from m2bridge.supervisor.exposition import cumulative_buckets, make_routes
from m2bridge.worker.stats import DURATION_BUCKETS

BUCKETS = list(DURATION_BUCKETS)
ROOT = Path(__file__).resolve().parents[3]


def histogram(counts: list[int], total: float) -> dict[str, Any]:
    return {"counts": counts + [0] * (len(BUCKETS) + 1 - len(counts)), "sum": total}


def process(pid: int, wid: int, state: str = "ready", served: int | None = 10) -> dict[str, Any]:
    return {"pid": pid, "wid": wid, "state": state, "age": 3.5, "cpu": 2.0, "cpu_seconds": 1.25,
            "rss": 1000, "fds": 9, "served": served, "in_flight": None if served is None else 1,
            "errors": 0, "rejected": 0, "timed_out": 0}  # fmt: skip


def stack_data(healthy: bool = True) -> dict[str, dict[str, Any]]:
    hello = {
        "name": "hello",
        "processes": [process(11, 1), process(12, 2, "stopping"), process(13, 2, served=3)],
        "totals": {"served": 30, "in_flight": 2, "errors": 4, "rejected": 5, "timed_out": 6},
        "latency": {
            "buckets": BUCKETS,
            "queue_time": histogram([30], 0.01),
            "app_time": histogram([0, 20, 10], 0.05),
        },
        "restarts": {**dict.fromkeys(RESTART_REASONS, 0), "crash": 2},
    }
    web = {"name": "web", "processes": [process(20, 1, served=None)], "totals": None,
           "latency": None, "restarts": dict.fromkeys(RESTART_REASONS, 0)}  # fmt: skip
    probe = {"watcher": "web", "endpoint": "ipc://x", "answering": True, "connections": 4,
             "tasks": 7, "error": ""}  # fmt: skip
    status_rows = [
        {"name": "hello", "state": "active", "numprocesses": 2, "running": 2},
        {"name": "web", "state": "active", "numprocesses": 1, "running": 1},
    ]
    return {
        "stats": {"watchers": [hello, web], "mongrel2": [probe]},
        "status": {"watchers": status_rows, "mongrel2": [probe], "healthy": healthy,
                   "problems": [] if healthy else ["not running as asked: web (stopped)"]},
        "dstats": {"pid": 1, "cpu": 0.5, "cpu_seconds": 3.5, "rss": 2048, "fds": 12, "age": 9.0},
    }  # fmt: skip


def scrape(data: dict[str, dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reply = make_routes(lambda name: data[name])["/metrics"]()
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_watcher_request_counters_come_from_the_totals():
    samples = scrape(stack_data())
    hello = (("watcher", "hello"),)
    assert samples["m2bridge_requests_total", hello] == 30
    assert samples["m2bridge_requests_in_flight", hello] == 2
    assert samples["m2bridge_requests_5xx_total", hello] == 4
    assert samples["m2bridge_requests_rejected_total", hello] == 5
    assert samples["m2bridge_requests_timed_out_total", hello] == 6
    assert ("m2bridge_requests_total", (("watcher", "web"),)) not in samples  # no counters


def test_histograms_are_cumulative_and_count_every_request():
    samples = scrape(stack_data())
    app = "m2bridge_request_app_seconds"
    assert samples[f"{app}_bucket", (("le", "0.0005"), ("watcher", "hello"))] == 0
    assert samples[f"{app}_bucket", (("le", "0.001"), ("watcher", "hello"))] == 20
    assert samples[f"{app}_bucket", (("le", "0.0025"), ("watcher", "hello"))] == 30
    assert samples[f"{app}_bucket", (("le", "+Inf"), ("watcher", "hello"))] == 30
    assert samples[f"{app}_count", (("watcher", "hello"),)] == 30
    assert samples[f"{app}_sum", (("watcher", "hello"),)] == 0.05
    assert samples["m2bridge_request_queue_seconds_count", (("watcher", "hello"),)] == 30


def test_restarts_are_counted_by_reason():
    samples = scrape(stack_data())
    assert (
        samples["m2bridge_watcher_restarts_total", (("reason", "crash"), ("watcher", "hello"))] == 2
    )
    assert samples["m2bridge_watcher_restarts_total", (("reason", "exit"), ("watcher", "web"))] == 0


def test_a_slot_being_replaced_shows_only_its_new_process():
    samples = scrape(stack_data())
    slot2 = (("watcher", "hello"), ("wid", "2"))
    assert samples["m2bridge_process_pid", slot2] == 13
    assert samples["m2bridge_process_requests_total", slot2] == 3
    assert samples["m2bridge_process_cpu_seconds_total", slot2] == 1.25
    assert samples["m2bridge_process_resident_memory_bytes", slot2] == 1000
    assert samples["m2bridge_process_open_fds", slot2] == 9
    assert samples["m2bridge_process_age_seconds", slot2] == 3.5
    assert ("m2bridge_process_requests_total", (("watcher", "web"), ("wid", "1"))) not in samples


def test_mongrel2_figures_supervisor_and_health():
    samples = scrape(stack_data())
    web = (("watcher", "web"),)
    assert samples["m2bridge_mongrel2_up", web] == 1
    assert samples["m2bridge_mongrel2_connections", web] == 4
    assert samples["m2bridge_mongrel2_tasks", web] == 7
    assert samples["m2bridge_supervisor_cpu_seconds_total", ()] == 3.5
    assert samples["m2bridge_supervisor_resident_memory_bytes", ()] == 2048
    assert samples["m2bridge_healthy", ()] == 1
    assert samples["m2bridge_watcher_desired_processes", (("watcher", "hello"),)] == 2


def test_a_silent_mongrel2_and_a_vanished_supervisor_sample_leave_gaps_not_zeros():
    data = stack_data(healthy=False)
    data["stats"]["mongrel2"][0].update(answering=False, connections=None, tasks=None)
    data["status"]["mongrel2"] = data["stats"]["mongrel2"]
    data["dstats"] = {"pid": 1, "cpu": None, "cpu_seconds": None, "rss": None, "fds": None}
    samples = scrape(data)
    assert samples["m2bridge_mongrel2_up", (("watcher", "web"),)] == 0
    assert ("m2bridge_mongrel2_connections", (("watcher", "web"),)) not in samples
    assert ("m2bridge_supervisor_cpu_seconds_total", ()) not in samples
    assert samples["m2bridge_healthy", ()] == 0


def test_healthz_answers_503_with_the_problems_when_unhealthy():
    routes = make_routes(lambda name: stack_data(healthy=False)[name])
    reply = routes["/healthz"]()
    assert reply.status == 503
    assert json.loads(reply.body) == {
        "healthy": False,
        "problems": ["not running as asked: web (stopped)"],
    }
    assert make_routes(lambda name: stack_data()[name])["/healthz"]().status == 200


def test_cumulative_buckets_end_with_inf():
    assert cumulative_buckets([0.1, 1.0], [1, 2, 3]) == [("0.1", 1), ("1.0", 3), ("+Inf", 6)]


def test_the_grafana_dashboard_queries_only_exported_metrics():
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    reply = make_routes(lambda name: stack_data()[name])["/metrics"]()
    exported = {
        sample.name
        for family in text_string_to_metric_families(reply.body.decode())
        for sample in family.samples
    }
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"m2bridge_[a-z0-9_]+", target["expr"])
    }
    assert len(queried) >= 10
    assert queried - exported == set()

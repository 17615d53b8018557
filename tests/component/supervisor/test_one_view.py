"""One view of several supervisors: `ctl --deployment` and `top --deployment` against two real
supervisors on tcp:// control endpoints with tokens, one of them stopped halfway."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from m2bridge.errors import ControlError
from m2bridge.supervisor.client import ControlClient
from tests.helpers.mongrel2 import free_port
from tests.helpers.stack import CTL, RunningStack, fake_watcher, running_stack, stop_by_pid

TOP = [sys.executable, "-m", "m2bridge", "top"]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


def ready_processes(endpoint: str, token: str) -> int:
    """How many processes of watcher ``w`` are ready (0 when the supervisor does not answer)."""
    try:
        with ControlClient(endpoint, timeout=0.5, token=token) as client:
            processes = client.call("stats", {"name": "w"})["watchers"][0]["processes"]
    except ControlError:
        return 0
    return sum(1 for p in processes if p["state"] == "ready")


@contextlib.contextmanager
def tcp_stack(base: Path, name: str) -> Iterator[tuple[RunningStack, str]]:
    """A supervisor of one fake process on ``tcp://127.0.0.1:PORT`` (token ``NAME-token``)."""
    (base / name).mkdir()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    control = f'[control]\nendpoint = "{endpoint}"\ntoken = "{name}-token"\n'
    text = control + fake_watcher(numprocesses=1)
    with running_stack(base / name, text, wait=False) as stack:
        stack.wait_until(lambda: ready_processes(endpoint, f"{name}-token") == 1)
        yield stack, endpoint


def test_deployment_file_gives_one_view_of_two_supervisors(base):
    with tcp_stack(base, "a") as (_, endpoint_a), tcp_stack(base, "b") as (stack_b, endpoint_b):
        (base / "b.token").write_text("b-token\n")
        deployment = base / "deployment.toml"
        deployment.write_text(
            f'[[supervisor]]\nname = "a"\nendpoint = "{endpoint_a}"\ntoken = "a-token"\n\n'
            f'[[supervisor]]\nname = "b"\nendpoint = "{endpoint_b}"\ntoken_file = "b.token"\n'
        )
        ctl = [*CTL, "--deployment", str(deployment), "--timeout", "1"]

        stats = run([*ctl, "stats"])
        assert stats.returncode == 0, stats.stderr
        rows = [line.split() for line in stats.stdout.splitlines()]
        assert rows[0][:3] == ["SUPERVISOR", "WATCHER", "PID"]
        assert [row[:2] for row in rows[1:]] == [["a", "w"], ["b", "w"]]
        as_json = json.loads(run([*ctl, "--json", "stats"]).stdout)["supervisors"]
        assert [(s["name"], s["endpoint"]) for s in as_json] == [
            ("a", endpoint_a),
            ("b", endpoint_b),
        ]
        pids = [s["data"]["watchers"][0]["processes"][0]["pid"] for s in as_json]
        assert [rows[1][2], rows[2][2]] == [str(pid) for pid in pids]
        assert run([*ctl, "status"]).returncode == 0

        refused = run([*ctl, "incr", "w"])
        assert refused.returncode == 2
        assert "add --all" in refused.stderr
        scaled = run([*ctl, "--json", "incr", "w", "--all"])
        assert scaled.returncode == 0, scaled.stderr
        counts = [s["data"]["numprocesses"] for s in json.loads(scaled.stdout)["supervisors"]]
        assert counts == [2, 2]

        top = run([*TOP, "--deployment", str(deployment), "--iterations", "1", "--timeout", "1"])
        assert top.returncode == 0, top.stderr
        assert f"== a ({endpoint_a})" in top.stdout
        assert f"== b ({endpoint_b})" in top.stdout

        stop_by_pid(stack_b.proc.pid, stack_b.proc)
        started = time.monotonic()
        down = run([*ctl, "stats"])
        elapsed = time.monotonic() - started
        assert down.returncode == 3
        assert down.stdout.splitlines()[1].split()[:2] == ["a", "w"]
        assert f"b: unreachable: no answer from {endpoint_b} within 1 s" in down.stdout
        assert "Traceback" not in down.stderr
        assert elapsed < 5

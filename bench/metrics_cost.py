"""What serving metrics costs the supervisor: its CPU under load, with and without /metrics.

    python -m bench.metrics_cost [--seconds 20] [--connections 8] [--scrape-every 1.0]

Runs the demo stack (Mongrel2, the relay, two hello workers) twice under the same wrk load:
once without metrics, once with ``[metrics]`` scraped every ``--scrape-every`` seconds (and
``/healthz`` as often), and prints the requests per second and the supervisor's CPU (% of one
core, from its CPU seconds over the load) of each run. Issue 16's bound: metrics add less
than 2% CPU to the supervisor at 10k requests per second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

from .wrk import lua_script, parse_wrk_output, wrk_argv

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONF = ROOT / "mongrel2_conf" / "examples" / "demo.conf"
STACK = ROOT / "examples" / "stack.toml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def stack_text(base: Path, metrics: int | None) -> tuple[str, int]:
    """The demo stack on free ports in ``base``; with ``[metrics]`` on port ``metrics``."""
    port, send, recv = free_port(), free_port(), free_port()
    conf = DEMO_CONF.read_text()
    conf = conf.replace("6767", str(port)).replace("9997", str(send)).replace("9996", str(recv))
    (base / "demo.conf").write_text(conf)
    text = STACK.read_text().replace("../mongrel2_conf/examples/demo.conf", "demo.conf")
    text = text.replace("/tmp/m2bridge-demo-relay.ipc", str(base / "relay.ipc"))
    text = text.replace('name = "demo"', f'name = "metrics-cost"\nrundir = "{base / "run"}"')
    if metrics is not None:
        text += f'\n[metrics]\naddress = "127.0.0.1:{metrics}"\n'
    return text, port


@contextlib.contextmanager
def running(text: str, base: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    (base / "stack.toml").write_text(text)
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m2bridge",
            "up",
            "--log-level",
            "warning",
            str(base / "stack.toml"),
        ],
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        time.sleep(2)  # both workers connected
        yield up
    finally:
        up.terminate()
        try:
            up.wait(20)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def scraper(metrics: int, every: float, stop: threading.Event, count: list[int]) -> None:
    while not stop.wait(every):
        for path in ("/metrics", "/healthz"):
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}{path}", timeout=5) as r:
                    r.read()
                count[0] += 1


def measure(args: argparse.Namespace, with_metrics: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="m2b-mc-", dir="/tmp") as tmp:
        base = Path(tmp)
        metrics = free_port() if with_metrics else None
        text, port = stack_text(base, metrics)
        with running(text, base, port) as up:
            supervisor = psutil.Process(up.pid)
            stop, scrapes = threading.Event(), [0]
            thread = None
            if metrics is not None:
                thread = threading.Thread(
                    target=scraper, args=(metrics, args.scrape_every, stop, scrapes)
                )
                thread.start()
            before = sum(supervisor.cpu_times()[:2])
            started = time.monotonic()
            script = base / "bench.lua"
            script.write_text(lua_script())
            url = f"http://127.0.0.1:{port}/"
            argv = wrk_argv(url, args.connections, args.seconds, str(script), threads=2)
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            elapsed = time.monotonic() - started
            used = sum(supervisor.cpu_times()[:2]) - before
            stop.set()
            if thread is not None:
                thread.join()
    result = parse_wrk_output(out)
    return {
        "rps": result.rps,
        "cpu": 100 * used / elapsed,
        "scrapes": scrapes[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--scrape-every", type=float, default=1.0)
    args = parser.parse_args(argv)
    without = measure(args, with_metrics=False)
    with_ = measure(args, with_metrics=True)
    print("| run | req/s | supervisor CPU (% of a core) | scrapes |")
    print("|---|---:|---:|---:|")
    print(f"| no metrics | {without['rps']:,.0f} | {without['cpu']:.2f} | - |")
    print(
        f"| /metrics + /healthz every {args.scrape_every:g} s | {with_['rps']:,.0f} "
        f"| {with_['cpu']:.2f} | {with_['scrapes']:.0f} |"
    )
    print(f"\nmetrics add {with_['cpu'] - without['cpu']:.2f} points of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())

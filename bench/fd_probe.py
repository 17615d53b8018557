"""Measure the fd-path worker under wrk: one process, a shared socket, SO_REUSEPORT sockets.

Usage: ``python bench/fd_probe.py [--duration 5] [--connections 50] [--rounds 1] [--json FILE]``

Each layout runs a hello app in fd-path worker subprocesses on 127.0.0.1, runs
``wrk -t1 -cC -dDs`` against it, stops the workers with SIGTERM and reads each worker's stats
file for its share of the requests. Layouts:

- ``one``: 1 process on one inherited listening socket;
- ``shared``: 2 processes inheriting the same listening socket (pywsgi accepts 1 per wake-up,
  because the worker sets ``wsgi.multiprocess`` for inherited sockets);
- ``shared-greedy``: the same with pywsgi's default of up to 100 accepts per wake-up;
- ``reuseport``: 2 processes, each inheriting its own SO_REUSEPORT socket on the same port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HELLO = """
def app(environ, start_response):
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [body]
"""

LAUNCH = """
import json, sys
from m2bridge.config import WorkerConfig
from m2bridge.worker import fd_worker as fdworker
if sys.argv[2] == "greedy":
    fdworker.FdServer.set_max_accept = lambda self: None
sys.exit(fdworker.main(WorkerConfig(**json.loads(sys.argv[1]))))
"""

LAYOUTS = {  # name: (processes, sockets, launcher mode)
    "one": (1, 1, "default"),
    "shared": (2, 1, "default"),
    "shared-greedy": (2, 1, "greedy"),
    "reuseport": (2, 2, "default"),
}


def make_sockets(count: int) -> list[socket.socket]:
    """``count`` listening sockets on one 127.0.0.1 port (SO_REUSEPORT when more than one)."""
    sockets: list[socket.socket] = []
    port = 0
    for _ in range(count):
        sock = socket.socket()
        if count > 1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        port = sock.getsockname()[1]
        sockets.append(sock)
    return sockets


@contextlib.contextmanager
def run_workers(workdir: Path, layout: str, sockets: list[socket.socket]) -> Iterator[list[Path]]:
    """Start the layout's workers; yield their stats paths; SIGTERM and reap them on exit."""
    processes, _, mode = LAYOUTS[layout]
    procs: list[subprocess.Popen[bytes]] = []
    stats: list[Path] = []
    try:
        for index in range(processes):
            sock = sockets[index % len(sockets)]
            stats.append(workdir / f"{layout}-{index}.json")
            options = {"app": "hello:app", "fd": sock.fileno(), "stats_file": str(stats[-1])}
            argv = [sys.executable, "-c", LAUNCH, json.dumps(options), mode]
            procs.append(subprocess.Popen(argv, cwd=workdir, pass_fds=[sock.fileno()]))
        wait_for_files(stats, timeout=10)
        yield stats
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_files(paths: list[Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers did not start: {paths}")
        time.sleep(0.05)
    time.sleep(0.3)


def run_wrk(port: int, connections: int, duration: int) -> float:
    """Requests per second that ``wrk -t1`` reports."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 30)
    found = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not found:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out.stdout}")
    return float(found.group(1))


def measure(workdir: Path, layout: str, connections: int, duration: int) -> dict[str, Any]:
    """One layout: req/s and the requests each worker served."""
    sockets = make_sockets(LAYOUTS[layout][1])
    try:
        port = sockets[0].getsockname()[1]
        with run_workers(workdir, layout, sockets) as stats:
            rps = run_wrk(port, connections, duration)
        served = [json.loads(p.read_text())["served"] for p in stats]
    finally:
        for sock in sockets:
            sock.close()
    return {"layout": layout, "req_per_s": rps, "served_per_process": served}


def format_result(result: dict[str, Any]) -> str:
    served = result["served_per_process"]
    shares = " / ".join(f"{100 * n / max(sum(served), 1):.0f}%" for n in served)
    return f"{result['layout']:14} {result['req_per_s']:>8.0f} req/s   split {shares}  {served}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="repeat all layouts, interleaved")
    parser.add_argument("--layouts", nargs="*", default=list(LAYOUTS), choices=list(LAYOUTS))
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed", file=sys.stderr)
        return 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "hello.py").write_text(HELLO)
        for _ in range(args.rounds):
            for layout in args.layouts:
                result = measure(workdir, layout, args.connections, args.duration)
                results.append(result)
                print(format_result(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

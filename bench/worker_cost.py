"""Instructions a worker spends per hello request, counted by callgrind (repeatable).

The worker (``m2bridge serve handlers.hello:app``) runs under ``valgrind --tool=callgrind``;
this script plays its peers: a fake relay (a ROUTER the worker's ``--relay`` DEALER connects
to, granting credit and acking ``bye`` like ``m2bridge relay``) or, with ``--direct``, a fake
Mongrel2 PUSH its PULL connects to; and Mongrel2's SUB the replies come back on. Two runs
serve ``--small`` and ``--large`` requests; the difference of their instruction totals
divided by the difference of the counts is the cost of one request, start-up and shutdown
cancelled out. ``--inflight`` bounds the requests handed over and not answered yet: 1 makes
the worker wait for every request (the cost of a wait shows in full), 32 lets it find them
queued. Run::

    python -m bench.worker_cost                    # relay, in flight 1 and 32
    python -m bench.worker_cost --direct           # the worker straight on Mongrel2's PUSH
    python -m bench.worker_cost --resend           # the worker waits for the relay's go
    python -m bench.worker_cost --small 500 --large 3000 --inflight 1
    python -m bench.worker_cost --protocol json    # Mongrel2's default header encoding
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from m2bridge.relay import wire
from m2bridge.testing import make_request_frame

from .workload import WORKLOADS

TOTALS = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)
APP = WORKLOADS["hello"].app
#: Connection ids cycled over: more than any in-flight bound, so requests in flight never share
#: a connection (the worker would serialise them).
CONNECTIONS = 64
#: The generation of the fake relay's ``count``.
GENERATION = 1
#: Seconds a run may take at most (callgrind is about 50 times slower than the CPU).
RUN_TIMEOUT = 600


def serve_under_callgrind(
    count: int, directory: Path, *, direct: bool, inflight: int, protocol: str, resend: bool
) -> int:
    """Serve ``count`` hello requests by a worker under callgrind; return its instructions."""
    tag = f"{_mode(direct, resend)}-{inflight}-{protocol}-{count}"
    out = directory / f"callgrind-{tag}.out"
    requests = f"ipc://{directory}/{tag}-requests.ipc"
    recv_spec = f"ipc://{directory}/{tag}-replies.ipc"
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.bind(recv_spec)
    feed = context.socket(zmq.PUSH if direct else zmq.ROUTER)
    feed.setsockopt(zmq.LINGER, 0)
    feed.bind(requests)
    source = ["--send-spec", requests] if direct else ["--relay", requests]
    worker = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
         "m2bridge", "serve", APP, *source, "--recv-spec", recv_spec, "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        feeder = _Feeder(
            feed, direct=direct, inflight=inflight, count=count, protocol=protocol, resend=resend
        )
        _run(feeder, sub, worker, until=lambda: feeder.replied >= count)
        assert feeder.replied == count, (feeder.replied, count)
        os.kill(worker.pid, signal.SIGTERM)
        _run(feeder, sub, worker, until=lambda: worker.poll() is not None)  # acks its ``bye``
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(RUN_TIMEOUT)
        context.destroy(linger=0)
    match = TOTALS.search(out.read_bytes())
    assert match is not None, f"no totals in {out}"
    return int(match.group(1))


class _Feeder:
    """Hands requests over (by credit from the worker's grants, as the relay does)."""

    def __init__(
        self,
        feed: zmq.Socket[bytes],
        *,
        direct: bool,
        inflight: int,
        count: int,
        protocol: str,
        resend: bool,
    ):
        self.resend = resend
        self.cleared = 0
        self.feed = feed
        self.direct = direct
        self.inflight = inflight
        self.count = count
        self.sent = self.replied = 0
        self.credit = 0
        self.peer: bytes | None = None
        self.frames = [
            make_request_frame("/", conn_id=n + 1, protocol=protocol) for n in range(CONNECTIONS)
        ]

    def on_worker(self) -> None:
        """Read one message of the worker (relay mode): a grant, a ``start`` or ``bye``."""
        peer, *frames = self.feed.recv_multipart()
        if self.peer is None:  # numbering starts; with --resend, the worker waits for go
            self.feed.send_multipart([peer, *wire.count_frames(self.resend, GENERATION)])
        self.peer = peer
        if wire.is_bye(frames):
            self.feed.send_multipart([peer, *wire.BYE_ACK_FRAMES])
            return
        start = wire.parse_start(frames[0])
        if start is not None:  # gated, the worker runs what it read once cleared (go)
            if self.resend and start.read > self.cleared:
                self.cleared = start.read
                self.feed.send_multipart([peer, *wire.encode_go(start.read)])
            return
        grant = wire.parse_grant(frames[0])
        if grant is not None and not grant.idle:
            self.credit += grant.credits

    def push(self) -> None:
        """Hand over what the in-flight bound and the credit allow."""
        while self.sent < self.count and self.sent - self.replied < self.inflight:
            frame = self.frames[self.sent % CONNECTIONS]
            if self.direct:
                try:
                    self.feed.send(frame, zmq.NOBLOCK)
                except zmq.Again:  # the PULL connects once the SUB subscribed
                    return
            elif self.credit > 0 and self.peer is not None:
                self.feed.send_multipart([self.peer, frame])
                self.credit -= 1
            else:
                return
            self.sent += 1


def _run(
    feeder: _Feeder,
    sub: zmq.Socket[bytes],
    worker: subprocess.Popen[bytes],
    until: Callable[[], bool],
) -> None:
    """Poll replies (the SUB must be polled to subscribe) and the worker until ``until()``."""
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    if not feeder.direct:
        poller.register(feeder.feed, zmq.POLLIN)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not until():
        assert time.monotonic() < deadline, "the worker under callgrind took too long"
        assert worker.poll() is None or until(), f"the worker exited ({worker.returncode})"
        events = dict(poller.poll(100))
        if sub in events:
            while sub.poll(0):
                feeder.replied += len(sub.recv_multipart())  # one reply per frame
        if feeder.feed in events:
            while feeder.feed.poll(0):
                feeder.on_worker()
        feeder.push()


def _mode(direct: bool, resend: bool) -> str:
    return "direct" if direct else "relay --resend" if resend else "relay"


def measure(
    small: int, large: int, *, direct: bool, inflight: int, protocol: str, resend: bool = False
) -> float:
    """Print and return the worker's instructions per request (difference of two runs)."""
    with tempfile.TemporaryDirectory(prefix="m2bridge-worker-cost-") as name:
        runs = [
            serve_under_callgrind(
                count,
                Path(name),
                direct=direct,
                inflight=inflight,
                protocol=protocol,
                resend=resend,
            )
            for count in (small, large)
        ]
    low, high = runs
    per_request = (high - low) / (large - small)
    mode = f"{_mode(direct, resend)}, {protocol}, in flight {inflight}"
    print(f"worker ({mode}): {low:,} instructions for {small:,} requests, {high:,} for {large:,}")
    print(f"worker ({mode}): {per_request:,.0f} instructions per request", flush=True)
    return per_request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4000)
    parser.add_argument("--inflight", type=int, action="append", help="default: 1 and 32")
    parser.add_argument("--direct", action="store_true", help="PULL from Mongrel2, no relay")
    parser.add_argument(
        "--resend", action="store_true", help="the worker waits for the relay's go (--resend)"
    )
    parser.add_argument("--protocol", choices=["tnetstring", "json"], default="tnetstring")
    args = parser.parse_args(argv)
    for inflight in args.inflight or [1, wire.WINDOW]:
        measure(
            args.small,
            args.large,
            direct=args.direct,
            inflight=inflight,
            protocol=args.protocol,
            resend=args.resend,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Instructions the relay spends per message it routes, counted by callgrind (repeatable).

The relay (``m2bridge relay``) runs under ``valgrind --tool=callgrind``; this script plays
Mongrel2 (a PUSH the relay's PULL connects to) and one worker (a DEALER that grants credit
like ``serve --relay`` and reads what is routed). Two runs route ``--small`` and ``--large``
messages; the difference of their instruction totals divided by the difference of the counts
is the cost of one message, start-up and shutdown cancelled out. Run::

    python -m bench.relay_cost                     # 2,000 and 12,000 hello requests
    python -m bench.relay_cost --small 1000 --large 6000
    python -m bench.relay_cost --resend            # copies kept until the worker's start
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq

from m2bridge.relay import wire
from m2bridge.testing import make_request_frame

#: Messages a simulated worker lets the relay queue for it, as ``serve --relay`` does.
WINDOW = wire.WINDOW
TOTALS = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def route_through_relay(count: int, directory: Path, *, resend: bool = False) -> int:
    """Route ``count`` requests through a relay under callgrind; return its instructions."""
    port = free_port()
    bind = f"ipc://{directory}/relay-{count}.ipc"
    out = directory / f"callgrind-{count}.out"
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.bind(f"tcp://127.0.0.1:{port}")
    relay = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
         "m2bridge", "relay", "--send-spec", f"tcp://127.0.0.1:{port}", "--bind", bind,
         *(["--resend"] if resend else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        dealer = context.socket(zmq.DEALER)
        dealer.connect(bind)
        frame = make_request_frame("/", conn_id=1)
        received = _drive(push, dealer, frame, count, resend=resend)
        assert received == count, (received, count)
    finally:
        os.kill(relay.pid, signal.SIGTERM)
        relay.wait(120)
        context.destroy(linger=0)
    match = TOTALS.search(out.read_bytes())
    assert match is not None, f"no totals in {out}"
    return int(match.group(1))


def _drive(
    push: zmq.Socket[bytes], dealer: zmq.Socket[bytes], frame: bytes, count: int, *, resend: bool
) -> int:
    """Grant, push and read until ``count`` messages came back through the relay (or 300 s);
    with ``resend``, say ``start`` with each grant, as a gated worker does (its ``go`` is
    read and dropped)."""
    deadline = time.monotonic() + 300
    while not dealer.poll(100, zmq.POLLOUT):
        assert time.monotonic() < deadline, "the relay never listened"
    dealer.send(wire.encode_grant(WINDOW, 0))
    sent = received = 0
    unacked = 0
    generation = wire.NO_GENERATION
    while received < count and time.monotonic() < deadline:
        while sent < count and sent - received < WINDOW:
            push.send(frame)
            sent += 1
        if dealer.poll(1000):
            message = dealer.recv_multipart()
            if message[0] == b"":  # a control word: count (its generation kept), go
                numbering = wire.parse_count(message[1])
                generation = generation if numbering is None else numbering[1]
                continue
            received += 1
            unacked += 1
            if unacked >= wire.GRANT_BATCH:
                dealer.send(wire.encode_grant(unacked, 0))
                if resend:
                    dealer.send(wire.encode_start(generation, received, []))
                unacked = 0
    return received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=12000)
    parser.add_argument("--resend", action="store_true", help="run the relay with --resend")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="m2bridge-relay-cost-") as name:
        small = route_through_relay(args.small, Path(name), resend=args.resend)
        large = route_through_relay(args.large, Path(name), resend=args.resend)
    per_message = (large - small) / (args.large - args.small)
    print(
        f"relay: {small:,} instructions for {args.small:,} messages, {large:,} for {args.large:,}"
    )
    mode = " (--resend)" if args.resend else ""
    print(f"relay{mode}: {per_message:,.0f} instructions per routed message")
    return 0


if __name__ == "__main__":
    sys.exit(main())

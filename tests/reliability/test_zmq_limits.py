"""The libzmq behaviour that bounds what a draining worker can save (no Mongrel2 needed).

Mongrel2 hands requests to workers over PUSH/PULL, and a PUSH socket gives a peer no way to
refuse work or hand it back. This pins down, with plain pyzmq, why a worker's drain reads its
queue *before* disconnecting (and why what is still on the wire at that instant is lost: the
connection's pipes are discarded on both sides, see docs/reliability.md). If a libzmq release
changes this, the test fails and the drain can be revisited.
"""

from __future__ import annotations

import time
from pathlib import Path

import zmq

MESSAGE = b"x" * 400


def drain(pull: zmq.Socket[bytes]) -> int:
    count = 0
    while True:
        try:
            pull.recv(zmq.NOBLOCK)
        except zmq.Again:
            return count
        count += 1


def test_disconnect_discards_what_the_pull_had_queued(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/q"
    with zmq.Context() as ctx:
        push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
        push.linger = pull.linger = 0
        push.bind(endpoint)
        pull.connect(endpoint)
        time.sleep(0.2)
        for _ in range(100):
            push.send(MESSAGE)
        time.sleep(0.2)
        pull.disconnect(endpoint)  # "disconnect first, then read the queue" gets nothing
        assert drain(pull) == 0
        push.close()
        pull.close()

"""The libzmq behaviour that bounds what a draining worker can save (no Mongrel2 needed).

Mongrel2 hands requests to workers over PUSH/PULL, and a PUSH socket gives a peer no way to
refuse work or hand it back. This pins down, with plain pyzmq, why a worker's drain reads its
queue *before* disconnecting (and why what is still on the wire at that instant is lost: the
connection's pipes are discarded on both sides, see docs/reliability.md). If a libzmq release
changes this, the test fails and the drain can be revisited.
"""

from __future__ import annotations

from pathlib import Path

import zmq

from tests.helpers.waiting import wait_until

MESSAGE = b"x" * 400
SENT = 100


def drain(pull: zmq.Socket[bytes]) -> int:
    count = 0
    while True:
        try:
            pull.recv(zmq.NOBLOCK)
        except zmq.Again:
            return count
        count += 1


def queued(pull: zmq.Socket[bytes]) -> bool:
    """Whether a message waits in the PULL's queue (without taking it)."""
    return bool(pull.poll(0, zmq.POLLIN))


def connected_pair(
    ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str
) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    """A bound PUSH and a connected PULL, once the PUSH has a pipe to the PULL."""
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    push.linger = pull.linger = 0
    push.bind(endpoint)
    pull.connect(endpoint)
    # A PUSH without a peer is not writable: POLLOUT is the connection being up.
    assert push.poll(5000, zmq.POLLOUT) == zmq.POLLOUT
    return push, pull


def test_without_a_disconnect_the_pull_reads_all_100_messages_sent(tmp_path: Path) -> None:
    with zmq.Context() as ctx:
        push, pull = connected_pair(ctx, f"ipc://{tmp_path}/q")
        for _ in range(SENT):
            push.send(MESSAGE)
        assert wait_until(lambda: queued(pull), 5)
        received = 0
        while received < SENT and pull.poll(2000, zmq.POLLIN):
            pull.recv()
            received += 1
        assert received == SENT
        push.close()
        pull.close()


def test_disconnect_discards_the_messages_the_pull_had_queued(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/q"
    with zmq.Context() as ctx:
        push, pull = connected_pair(ctx, endpoint)
        for _ in range(SENT):
            push.send(MESSAGE)
        assert wait_until(lambda: queued(pull), 5)
        assert pull.recv() == MESSAGE  # the messages really arrived in the PULL's queue...
        assert queued(pull)  # ...and more wait there behind the one just read
        pull.disconnect(endpoint)  # "disconnect first, then read the queue" gets nothing
        assert drain(pull) == 0
        push.close()
        pull.close()

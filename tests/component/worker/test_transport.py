"""transport.Channel in this process (zmq.green) against FakeMongrel2's real sockets.

Checks the readiness rule the worker relies on: the XPUB sees Mongrel2's subscription when the
connection is up (and an unsubscription when Mongrel2 goes away), and requests are read only
while it is up.
"""

from __future__ import annotations

import logging
import threading

import gevent
import pytest

from m2bridge.testing import FakeMongrel2, make_request_frame, parse_reply
from m2bridge.worker.channel import MAX_BURST_FRAMES, OUTBOX_LIMIT, READ_RECHECK
from m2bridge.worker.transport import Transport
from tests.helpers.waiting import wait_until


@pytest.fixture
def transport(directory):
    transport = Transport(
        (f"ipc://{directory / 'm2-send.ipc'}",),
        (f"ipc://{directory / 'm2-recv.ipc'}",),
        identity="test-worker",
    )
    yield transport
    transport.close(linger_ms=0)


def test_channel_is_not_ready_and_warns_while_no_mongrel2_listens(transport, caplog):
    channel = transport.channels[0]
    with caplog.at_level(logging.WARNING, "m2bridge.worker.channel"):
        assert channel.wait_ready(timeout=1.2) is False
    assert not channel.ready
    assert channel.recv_nowait() is None  # the PULL is not even connected
    assert f"waiting for Mongrel2 at {channel.recv_spec}" in caplog.text


def test_channel_becomes_ready_on_subscription_and_serves_a_round_trip(transport, directory):
    channel = transport.channels[0]
    with FakeMongrel2(directory) as fake:
        assert channel.wait_ready(timeout=5)
        sender = threading.Thread(target=fake.send_frame, args=(make_request_frame("/x"),))
        sender.start()
        frame = gevent.with_timeout(5, channel.recv)
        sender.join(5)
        assert frame == make_request_frame("/x")
        channel.send(b"%s 1:1, hello" % fake.sender)
        gevent.sleep(0)  # replies leave once the ready greenlets have run
        assert fake.wait_for(lambda: len(fake.replies) == 1, timeout=5)
        assert fake.replies[0] == parse_reply(b"%s 1:1, hello" % fake.sender)
        assert channel.reply_ident is None  # Mongrel2 subscribed to everything (recv_ident '')


def test_channel_pauses_when_mongrel2_leaves_and_resumes_when_it_returns(transport, directory):
    channel = transport.channels[0]
    with FakeMongrel2(directory):
        assert channel.wait_ready(timeout=5)
    assert wait_until(lambda: not channel.ready, sleep=gevent.sleep)  # Mongrel2's unsubscription
    with FakeMongrel2(directory, recv_ident=b"ident-42"):
        assert channel.wait_ready(timeout=5)
        assert channel.reply_ident == b"ident-42"


def test_transport_refuses_unpaired_specs():
    with pytest.raises(ValueError, match="pair up"):
        Transport(("ipc:///tmp/a",), ())


def test_replies_of_one_loop_pass_leave_together_and_in_order(transport, directory):
    channel = transport.channels[0]
    with FakeMongrel2(directory) as fake:
        assert channel.wait_ready(timeout=5)
        for conn_id in range(20):
            channel.send(b"%s 2:%02d, reply %d" % (fake.sender, conn_id, conn_id))
        assert not fake.wait_for(lambda: bool(fake.replies), timeout=0.2)  # still queued
        gevent.sleep(0)
        assert fake.wait_for(lambda: len(fake.replies) == 20, timeout=5)
        assert [r.body for r in fake.replies] == [b"reply %d" % i for i in range(20)]


def test_a_greenlet_that_never_yields_still_hands_replies_over_past_the_outbox_limit(
    transport, directory
):
    channel = transport.channels[0]
    total = OUTBOX_LIMIT * 2 + 10
    with FakeMongrel2(directory) as fake:
        assert channel.wait_ready(timeout=5)
        for n in range(total):
            channel.send(b"%s 1:1, %d" % (fake.sender, n))
        # No yield yet: everything but the last partial batch is already with ZeroMQ.
        assert fake.wait_for(lambda: len(fake.replies) >= OUTBOX_LIMIT * 2, timeout=5)
        gevent.sleep(0)
        assert fake.wait_for(lambda: len(fake.replies) == total, timeout=5)
        assert [int(r.body) for r in fake.replies] == list(range(total))


def test_close_sends_the_replies_still_queued(directory):
    transport = Transport(
        (f"ipc://{directory / 'm2-send.ipc'}",), (f"ipc://{directory / 'm2-recv.ipc'}",)
    )
    with FakeMongrel2(directory) as fake:
        assert transport.channels[0].wait_ready(timeout=5)
        transport.channels[0].send(b"%s 1:7, last words" % fake.sender)
        transport.close(linger_ms=2000)  # no loop pass in between
        assert fake.wait_for(lambda: len(fake.replies) == 1, timeout=5)
        assert fake.replies[0].body == b"last words"


@pytest.fixture
def raw_mongrel2(directory):
    """Mongrel2's two sockets as plain zmq.green ones, so a test sees the message framing
    (FakeMongrel2 reads frame by frame, as Mongrel2 does); yields (channel, SUB)."""
    import zmq.green as zmq

    context = zmq.Context()
    push, sub = context.socket(zmq.PUSH), context.socket(zmq.SUB)
    push.bind(f"ipc://{directory / 'm2-send.ipc'}")
    sub.bind(f"ipc://{directory / 'm2-recv.ipc'}")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    transport = Transport(
        (f"ipc://{directory / 'm2-send.ipc'}",), (f"ipc://{directory / 'm2-recv.ipc'}",)
    )
    try:
        channel = transport.channels[0]
        assert channel.wait_ready(timeout=5)
        yield channel, sub
    finally:
        transport.close(linger_ms=0)
        push.close(0)
        sub.close(0)
        context.term()


def test_a_burst_of_replies_is_one_multipart_message_of_one_reply_per_frame(raw_mongrel2):
    """Mongrel2 reads every frame as a reply of its own; ZeroMQ wakes its I/O thread once."""
    channel, sub = raw_mongrel2
    for n in range(3):
        channel.send(b"uuid 1:%d, reply %d" % (n, n))
    gevent.sleep(0)
    with gevent.Timeout(5):
        frames = sub.recv_multipart()
    assert frames == [b"uuid 1:%d, reply %d" % (n, n) for n in range(3)]
    channel.send(b"uuid 1:9, alone")
    gevent.sleep(0)
    with gevent.Timeout(5):
        assert sub.recv_multipart() == [b"uuid 1:9, alone"]


def test_a_request_whose_wake_up_was_missed_is_still_read_after_the_recheck(transport, directory):
    channel = transport.channels[0]
    with FakeMongrel2(directory) as fake:
        assert channel.wait_ready(timeout=5)
        channel._reader.stop()  # as if ZMQ_FD never signalled
        receiver = gevent.spawn(channel.recv)
        gevent.sleep(0)  # the receiver runs until it waits for a request
        assert not receiver.ready()
        fake.send_frame(make_request_frame("/late"))
        receiver.join(READ_RECHECK + 2)
        assert receiver.ready()
        assert receiver.value == make_request_frame("/late")


def test_a_burst_longer_than_max_burst_frames_leaves_as_several_messages(raw_mongrel2):
    channel, sub = raw_mongrel2
    total = MAX_BURST_FRAMES + 5
    for n in range(total):
        channel.send(b"uuid 1:1, %d" % n)
    gevent.sleep(0)
    with gevent.Timeout(5):
        messages = [sub.recv_multipart(), sub.recv_multipart()]
    assert [len(frames) for frames in messages] == [MAX_BURST_FRAMES, 5]
    assert [int(f.split(b", ")[1]) for f in messages[0] + messages[1]] == list(range(total))

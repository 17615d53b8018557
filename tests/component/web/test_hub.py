"""The console's fan-out (m2bridge/web/hub.py) in greenlets of this process: every stream gets
the first event then each update, heartbeats in silence, and a slow or closed one is dropped."""

from __future__ import annotations

import gevent

from m2bridge.web.hub import QUEUE_SIZE, Hub


def first():
    return ("history", {"points": []})


def test_a_stream_gets_the_first_event_then_each_published_one():
    hub = Hub()
    stream = hub.subscribe(first)
    assert len(hub) == 0  # registered when it starts, together with its first event
    assert next(stream) == ("history", {"points": []})
    assert len(hub) == 1
    hub.publish("update", {"n": 1})
    hub.publish("update", {"n": 2})
    assert next(stream) == ("update", {"n": 1})
    assert next(stream) == ("update", {"n": 2})


def test_every_stream_gets_every_event():
    hub = Hub()
    streams = [hub.subscribe(first) for _ in range(3)]
    for stream in streams:
        next(stream)
    hub.publish("update", {"n": 1})
    assert [next(stream) for stream in streams] == [("update", {"n": 1})] * 3


def test_silence_gives_a_heartbeat():
    hub = Hub(heartbeat=0.05)
    stream = hub.subscribe(first)
    next(stream)
    assert next(stream) is None
    hub.publish("update", {})
    assert next(stream) == ("update", {})


def test_closing_a_stream_unsubscribes_it():
    hub = Hub()
    stream = hub.subscribe(first)
    next(stream)
    stream.close()
    assert len(hub) == 0
    hub.publish("update", {})  # nobody to send to: no error


def test_a_stream_too_slow_to_keep_up_is_dropped():
    hub = Hub()
    slow, fast = hub.subscribe(first), hub.subscribe(first)
    next(slow)
    next(fast)
    for n in range(QUEUE_SIZE + 1):
        hub.publish("update", {"n": n})
        assert next(fast) == ("update", {"n": n})
    assert len(hub) == 1
    assert list(slow) == []  # it ends at once (its page reconnects and gets the history)


def test_close_ends_every_stream():
    hub = Hub(heartbeat=30)
    streams = [hub.subscribe(first) for _ in range(2)]
    for stream in streams:
        next(stream)
    readers = [gevent.spawn(list, stream) for stream in streams]
    gevent.sleep(0.01)
    hub.close()
    assert [reader.get(timeout=2) for reader in readers] == [[], []]
    assert len(hub) == 0


def test_close_ends_a_stream_whose_queue_is_full():
    hub = Hub()
    stream = hub.subscribe(first)
    next(stream)
    for n in range(QUEUE_SIZE):
        hub.publish("update", {"n": n})
    hub.close()
    assert list(stream) == []
    assert len(hub) == 0

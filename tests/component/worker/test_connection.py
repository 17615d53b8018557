"""connection.Connection / ConnectionTable in this process, with gevent and a list-backed sink."""

from __future__ import annotations

import gevent
import pytest
from gevent.pool import Pool

from m2bridge.testing import parse_reply
from m2bridge.worker.connection import ConnectionTable
from m2bridge.worker.pacing import BURST, MERGE_INTERVAL
from tests.helpers.sink import NotRelayed
from tests.helpers.waiting import wait_until


class ListSink(NotRelayed):
    """A channel that records what would have been published."""

    index = 0
    recv_spec = "ipc://test"
    reply_ident = None

    def __init__(self):
        self.sent = []

    def send(self, message):
        self.sent.append(parse_reply(message))

    def bodies(self, conn_id=1):
        return [reply.body for reply in self.sent if conn_id in reply.conn_ids]


@pytest.fixture
def sink():
    return ListSink()


@pytest.fixture
def table():
    return ConnectionTable(Pool(10))


def run_job(table, sink, job, conn_id=1, sender=b"m2"):
    table.submit(sink, conn_id, sender, (job, None))
    gevent.sleep(0)


def wait_idle(table, timeout=5):
    assert wait_until(lambda: len(table) == 0, timeout, interval=0.001, sleep=gevent.sleep), (
        "jobs still run"
    )


def test_a_small_response_is_one_message_and_close_follows_it(table, sink):
    def job(conn, _):
        conn.write(b"HTTP/1.1 200 OK\r\n\r\nhi")
        conn.end(close=True)

    run_job(table, sink, job)
    wait_idle(table)
    assert sink.bodies() == [b"HTTP/1.1 200 OK\r\n\r\nhi", b""]
    assert {reply.sender for reply in sink.sent} == {b"m2"}


def test_a_burst_of_writes_is_merged_in_order(table, sink):
    pieces = [b"%d," % i for i in range(10000)]

    def job(conn, _):
        for piece in pieces:
            conn.write(piece)
        conn.end(close=False)

    run_job(table, sink, job)
    wait_idle(table)
    assert b"".join(sink.bodies()) == b"".join(pieces)
    assert len(sink.bodies()) <= BURST + 1


def test_held_back_bytes_leave_while_the_application_blocks(table, sink):
    def job(conn, _):
        for i in range(BURST + 3):
            conn.write(b"%d;" % i)
        gevent.sleep(0.5)  # the app is busy: the flusher must not wait for it
        conn.end(close=False)

    expected = b"".join(b"%d;" % i for i in range(BURST + 3))
    run_job(table, sink, job)
    assert wait_until(lambda: b"".join(sink.bodies()) == expected, timeout=0.4, sleep=gevent.sleep)
    assert len(table) == 1  # the application still blocks
    wait_idle(table)


def test_sustained_stream_is_paced_to_one_message_per_interval(table, sink):
    def job(conn, _):
        for _ in range(200):
            conn.write(b"x")
            gevent.sleep(0.0001)
        conn.end(close=False)

    started = gevent.get_hub().loop.now()
    run_job(table, sink, job)
    wait_idle(table)
    elapsed = gevent.get_hub().loop.now() - started
    assert b"".join(sink.bodies()) == b"x" * 200
    assert len(sink.bodies()) <= BURST + elapsed / MERGE_INTERVAL + 2


def test_jobs_of_one_connection_run_in_order_and_connections_run_concurrently(table, sink):
    order = []

    def slow(conn, tag):
        gevent.sleep(0.05)
        order.append(tag)

    table.submit(sink, 1, b"m2", (slow, "1a"))
    table.submit(sink, 1, b"m2", (slow, "1b"))
    table.submit(sink, 2, b"m2", (slow, "2a"))
    assert len(table) == 2
    wait_idle(table)
    assert order in (["1a", "2a", "1b"], ["2a", "1a", "1b"])


def test_disconnect_skips_queued_jobs_and_cancels_the_running_one(table, sink):
    seen: list[object] = []

    def job(conn, tag):
        seen.append((tag, conn.closed))
        if not conn.closed:
            conn.write(b"partial")
            gevent.sleep(10)
            seen.append("not cancelled")

    table.submit(sink, 1, b"m2", (job, "running"))
    table.submit(sink, 1, b"m2", (job, "queued"))
    assert wait_until(
        lambda: sink.bodies() == [b"partial"], sleep=gevent.sleep
    )  # the first job runs
    assert table.disconnect(0, 1, grace=0.05)
    wait_idle(table, timeout=2)
    assert seen == [("running", False), ("queued", True)]
    assert sink.bodies() == [b"partial"]  # nothing after the disconnect, not even a close


def test_disconnect_of_an_idle_connection_is_ignored(table):
    assert table.disconnect(0, 99, grace=0) is False


def test_killed_connection_closes_its_client(table, sink):
    def job(conn, _):
        conn.write(b"HTTP/1.1 200 OK\r\n\r\nstart")
        gevent.sleep(10)

    pool = Pool(10)
    table = ConnectionTable(pool)
    run_job(table, sink, job)
    assert wait_until(
        lambda: sink.bodies() == [b"HTTP/1.1 200 OK\r\n\r\nstart"], sleep=gevent.sleep
    )
    pool.kill(timeout=1)
    assert sink.bodies() == [b"HTTP/1.1 200 OK\r\n\r\nstart", b""]
    assert len(table) == 0


def test_explicit_sender_id_wins_over_the_request_sender(sink):
    table = ConnectionTable(Pool(2), sender_id=b"explicit-id")

    def job(conn, _):
        conn.respond(b"ok", close=False)

    run_job(table, sink, job, sender=b"from-request")
    wait_idle(table)
    assert [reply.sender for reply in sink.sent] == [b"explicit-id"]


def test_a_failing_job_closes_its_client_and_the_table_forgets_it(table, sink, caplog):
    def job(conn, _):
        conn.write(b"HTTP/1.1 200 OK\r\n\r\npartial")
        raise gevent.Timeout()  # e.g. an app's own timeout escaping run_wsgi

    run_job(table, sink, job)
    wait_idle(table)
    assert sink.bodies() == [b"HTTP/1.1 200 OK\r\n\r\npartial", b""]
    assert "request failed outside the application" in caplog.text


def test_disconnect_sets_the_disconnected_event(table, sink):
    events = []

    def job(conn, _):
        events.append(conn.disconnected)
        conn.disconnected.wait(5)

    run_job(table, sink, job)
    assert not events[0].is_set()
    table.disconnect(0, 1, grace=1)
    wait_idle(table, timeout=2)
    assert events[0].is_set()
    assert sink.sent == []


def test_flow_controlled_writes_wait_for_credits_and_never_exceed_the_window(table, sink):
    table.open_window(0, 1, 1000)
    progress = []

    def job(conn, _):
        for _ in range(5):
            conn.write(b"x" * 400)
            progress.append(sum(len(b) for b in sink.bodies()))
        conn.end(close=False)

    run_job(table, sink, job)
    assert wait_until(lambda: sum(len(b) for b in sink.bodies()) >= 1000, sleep=gevent.sleep)
    assert sink.bodies() == [b"x" * 400, b"x" * 400, b"x" * 200]  # 1000 credits, then wait
    assert len(table) == 1
    table.credit(0, 1, 600)
    assert wait_until(lambda: sum(len(b) for b in sink.bodies()) >= 1600, sleep=gevent.sleep)
    assert sum(len(b) for b in sink.bodies()) == 1600
    assert len(table) == 1  # waiting for credits again
    table.credit(0, 1, 1000)
    wait_idle(table)
    assert sum(len(b) for b in sink.bodies()) == 2000
    assert progress[-1] == 2000


def test_flow_controlled_messages_stay_below_the_fatal_size(table, sink):
    table.open_window(0, 1, 102400)

    def job(conn, _):
        conn.write(b"y" * 100000)
        conn.end(close=False)

    run_job(table, sink, job)
    wait_idle(table)
    sizes = [len(b) for b in sink.bodies()]
    assert sum(sizes) == 100000
    assert max(sizes) <= 65536


def test_a_disconnect_wakes_a_write_waiting_for_credits(table, sink):
    table.open_window(0, 1, 10)

    def job(conn, _):
        conn.write(b"z" * 100)
        conn.write(b"more")

    run_job(table, sink, job)
    assert wait_until(
        lambda: sink.bodies() == [b"z" * 10], sleep=gevent.sleep
    )  # then it waits for credits
    assert table.windows == 1
    table.disconnect(0, 1, grace=5)
    wait_idle(table, timeout=1)  # woken at once, not after the grace period
    assert sink.bodies() == [b"z" * 10]
    assert table.windows == 0


def test_credits_for_an_unknown_connection_are_ignored(table):
    assert table.credit(0, 42, 100) is False


def test_closing_forgets_the_credit_window(table, sink):
    table.open_window(0, 1, 100)

    def job(conn, _):
        conn.write(b"ok")
        conn.end(close=True)

    run_job(table, sink, job)
    wait_idle(table)
    assert table.windows == 0
    assert sink.bodies() == [b"ok", b""]


def test_refuse_answers_and_closes_without_a_greenlet(table, sink):
    table.refuse(sink, 7, b"m2", b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    assert sink.bodies(7) == [b"HTTP/1.1 503 Service Unavailable\r\n\r\n", b""]
    assert len(table) == 0


def test_a_finished_connections_greenlet_serves_the_next_connection(table, sink):
    seen = []

    def job(conn, _):
        seen.append(gevent.getcurrent())
        conn.respond(b"ok", close=False)

    run_job(table, sink, job, conn_id=1)
    wait_idle(table)
    run_job(table, sink, job, conn_id=2)
    wait_idle(table)
    assert seen[0] is seen[1]
    assert sink.bodies(1) == [b"ok"]
    assert sink.bodies(2) == [b"ok"]


def test_a_late_cancel_never_hits_the_next_connection_on_the_same_greenlet(table, sink):
    runners = []

    def slow(conn, _):
        runners.append(gevent.getcurrent())
        gevent.sleep(0.02)
        conn.respond(b"first", close=False)

    def other(conn, _):
        runners.append(gevent.getcurrent())
        gevent.sleep(0.4)
        conn.respond(b"second", close=False)

    run_job(table, sink, slow, conn_id=1)
    table.disconnect(0, 1, grace=0.2)  # fires while the same greenlet serves connection 2
    wait_idle(table, timeout=0.15)  # connection 1 finished well before its grace period ended
    run_job(table, sink, other, conn_id=2)
    wait_idle(table)
    assert runners[0] is runners[1]  # the cancel of 1 was still pending on this greenlet
    assert sink.bodies(2) == [b"second"]


def test_release_idle_lets_the_pool_join(sink):
    pool = Pool(4)
    table = ConnectionTable(pool)

    def job(conn, _):
        conn.respond(b"ok", close=False)

    run_job(table, sink, job)
    wait_idle(table)
    assert not pool.join(timeout=0.05)  # its greenlet is parked, waiting for work
    table.release_idle()
    assert pool.join(timeout=1)

"""The relay (``m2bridge relay``) between FakeMongrel2 and real workers started with ``--relay``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from m2bridge.relay import wire
from m2bridge.relay.router import Relay
from m2bridge.relay.state import MAX_UNSTARTED
from m2bridge.testing import FakeMongrel2
from m2bridge.worker.relay_channel import REPORT_INTERVAL
from tests.helpers.mongrel2 import stop_process
from tests.helpers.worker import APPS, REPO_ROOT, WorkerProcess

MUX = f"{APPS}.mux:app"


@contextlib.contextmanager
def running(argv: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; stopped by PID (SIGTERM, then SIGKILL)."""
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, timeout=10)


@contextlib.contextmanager
def relay(tmp_path: Path, fake: FakeMongrel2, *options: str) -> Iterator[str]:
    """A relay process reading ``fake``; yields the endpoint workers connect to."""
    bind = f"ipc://{tmp_path / 'relay.ipc'}"
    argv = [sys.executable, "-m", "m2bridge", "relay", "--send-spec", fake.send_spec, *options]
    with running([*argv, "--bind", bind], tmp_path / "relay.log"):
        yield bind


@contextlib.contextmanager
def worker(tmp_path: Path, fake: FakeMongrel2, bind: str, name: str) -> Iterator[WorkerProcess]:
    """One worker of MUX taking its requests from the relay at ``bind``."""
    stats = tmp_path / f"{name}.stats.json"
    argv = [sys.executable, "-m", "m2bridge", "serve", MUX, "--relay", bind,
            "--recv-spec", fake.recv_spec, "--stats-file", str(stats)]  # fmt: skip
    with running(argv, tmp_path / f"{name}.log") as proc:
        process = WorkerProcess(proc, tmp_path / f"{name}.log", stats)
        process.wait_ready()
        yield process


def test_requests_are_served_through_the_relay(tmp_path, fake):
    with relay(tmp_path, fake) as bind, worker(tmp_path, fake, bind, "w1"):
        ids = [fake.request("/hello/") for _ in range(50)]
        assert all(fake.response(conn_id).status == 200 for conn_id in ids)


def served(process: WorkerProcess) -> int:
    return int(process.stats().get("served", 0))


def test_two_workers_share_new_connections(tmp_path, fake):
    with (
        relay(tmp_path, fake) as bind,
        worker(tmp_path, fake, bind, "w1") as w1,
        worker(tmp_path, fake, bind, "w2") as w2,
    ):
        ids = [fake.request("/sleepy/", query="seconds=0.01") for _ in range(200)]
        assert all(fake.response(conn_id).status == 200 for conn_id in ids)
        time.sleep(1.2)  # stats files are rewritten about once a second
        assert served(w1) > 20, (served(w1), served(w2))
        assert served(w2) > 20, (served(w1), served(w2))


def test_a_keep_alive_connection_reaches_a_worker_that_joined_after_its_first_request(
    tmp_path, fake
):
    """With ``--resend``, each answered request is reported finished, so the connection's next
    one is placed by credit like a new one: a long keep-alive connection does not stay on its
    first worker."""
    conn_id = 42
    with relay(tmp_path, fake, "--resend") as bind, worker(tmp_path, fake, bind, "w1") as w1:
        for _ in range(20):
            fake.request("/hello/", conn_id=conn_id)
            assert fake.response(conn_id).status == 200
        with worker(tmp_path, fake, bind, "w2") as w2:
            for n in range(100):  # one at a time, a moment after the answer to the last
                fake.request("/hello/", conn_id=conn_id, query=f"n={n}")
                assert fake.response(conn_id).status == 200
                time.sleep(REPORT_INTERVAL * 1.5)
            time.sleep(1.2)  # stats files are rewritten about once a second
            assert served(w2) > 20, (served(w1), served(w2))


def test_sigterm_of_a_worker_in_a_burst_loses_no_request(tmp_path, fake):
    with (
        relay(tmp_path, fake) as bind,
        worker(tmp_path, fake, bind, "w1") as w1,
        worker(tmp_path, fake, bind, "w2"),
    ):
        ids = [fake.request("/sleepy/", query="seconds=0.02") for _ in range(150)]
        w1.stop(signal.SIGTERM)
        ids += [fake.request("/sleepy/", query="seconds=0.02") for _ in range(150)]
        assert w1.proc.returncode == 0
        missing = [i for i in ids if not _answered(fake, i)]
        assert missing == [], w1.log()[-2000:]


def test_a_killed_worker_is_dropped_and_later_requests_go_to_the_others(tmp_path, fake):
    with (
        relay(tmp_path, fake) as bind,
        worker(tmp_path, fake, bind, "w1") as w1,
        worker(tmp_path, fake, bind, "w2"),
    ):
        for conn_id in [fake.request("/hello/") for _ in range(20)]:
            assert fake.response(conn_id).status == 200
        w1.stop(signal.SIGKILL)
        ids = [fake.request("/hello/") for _ in range(100)]
        assert all(_answered(fake, conn_id) for conn_id in ids)


def test_disconnect_reaches_the_worker_holding_the_connection(tmp_path, fake):
    with (
        relay(tmp_path, fake) as bind,
        worker(tmp_path, fake, bind, "w1"),
        worker(tmp_path, fake, bind, "w2"),
    ):
        ids = [fake.next_conn_id() for _ in range(8)]
        for conn_id in ids:
            fake.request("/sleepy/", query="seconds=1", conn_id=conn_id)
            fake.request("/hello/", conn_id=conn_id)
        time.sleep(0.2)
        for conn_id in ids:
            fake.disconnect(conn_id)
        time.sleep(1.5)
        # Round-robin would hand half the notices to the wrong worker: some would answer.
        assert [fake.message_count(conn_id) for conn_id in ids] == [0] * len(ids)


def test_bad_worker_messages_are_logged_and_the_relay_keeps_serving(tmp_path, fake):
    with relay(tmp_path, fake) as bind, worker(tmp_path, fake, bind, "w1"):
        context = zmq.Context()
        rogue = context.socket(zmq.DEALER)
        rogue.setsockopt(zmq.LINGER, 0)
        try:
            rogue.connect(bind)
            for junk in ([b"ready x 0"], [b"ready 5 9"], [b"hello"], [b"a", b"b"], [b""]):
                rogue.send_multipart(junk)
            time.sleep(0.3)
            ids = [fake.request("/hello/") for _ in range(20)]
            assert all(fake.response(conn_id).status == 200 for conn_id in ids)
        finally:
            rogue.close(0)
            context.term()
    log = (tmp_path / "relay.log").read_text()
    assert log.count("sent a bad message") == 5


def test_relay_that_cannot_bind_exits_1_with_a_log_line(tmp_path):
    argv = [sys.executable, "-m", "m2bridge", "relay", "--send-spec", f"ipc://{tmp_path}/m2",
            "--bind", f"ipc://{tmp_path}/no/such/dir/relay.ipc"]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert "cannot start the relay" in result.stderr


def test_relay_refuses_a_bad_endpoint_as_a_usage_error(tmp_path):
    argv = [sys.executable, "-m", "m2bridge", "relay", "--send-spec", "nonsense", "--bind", "x"]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "invalid endpoint" in result.stderr


def _answered(fake: FakeMongrel2, conn_id: int) -> bool:
    try:
        return fake.response(conn_id, timeout=5).status == 200
    except TimeoutError:
        return False


@contextlib.contextmanager
def stepped_relay(
    tmp_path: Path, send_spec: str | None = None, recv_specs: tuple[str, ...] = (), **options: Any
) -> Iterator[tuple[Relay, zmq.Context[Any]]]:
    """A ``Relay`` in this process, stepped by the test (``pump``), reading ``send_spec`` (a
    PUSH the test binds at ``ipc://TMP/m2.ipc`` by default); with its context, whose sockets
    (the test's too) are all closed at the end."""
    context: zmq.Context[Any] = zmq.Context()
    spec = send_spec or f"ipc://{tmp_path}/m2.ipc"
    relay = Relay([spec], f"ipc://{tmp_path}/relay.ipc", context, recv_specs, **options)
    try:
        yield relay, context
    finally:
        relay.router.setsockopt(zmq.LINGER, 0)
        relay.close()
        context.destroy(linger=0)


def relay_socket(context: zmq.Context[Any], kind: int, tmp_path: Path, name: str) -> Any:
    """A socket of ``kind``: a PUSH bound at ``name`` (Mongrel2's side), else connected."""
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if kind == zmq.PUSH:
        sock.bind(f"ipc://{tmp_path}/{name}")
    else:
        sock.connect(f"ipc://{tmp_path}/{name}")
    return sock


@pytest.fixture
def inproc_relay(tmp_path):
    """A ``Relay`` stepped by the test, a PUSH standing for Mongrel2, and a DEALER worker."""
    with stepped_relay(tmp_path) as (relay, context):
        push = relay_socket(context, zmq.PUSH, tmp_path, "m2.ipc")
        yield relay, push, relay_socket(context, zmq.DEALER, tmp_path, "relay.ipc")


def pump(relay: Relay, seconds: float = 0.3) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        relay.step(20)


def received(dealer: zmq.Socket[bytes], timeout_ms: int = 300) -> list[list[bytes]]:
    """What the relay sent ``dealer``, but the ``count`` it sends a worker it did not know."""
    frames = []
    while dealer.poll(timeout_ms):
        message = dealer.recv_multipart()
        if message[0] != b"" or not message[1].startswith(wire.COUNT):
            frames.append(message)
    return frames


def test_requests_wait_in_the_relay_until_a_worker_grants_credit(inproc_relay):
    relay, push, dealer = inproc_relay
    messages = [b"uuid %d / 2:{},0:," % n for n in range(5)]
    for message in messages:
        push.send(message)
    pump(relay)
    assert received(dealer, 100) == []
    dealer.send(b"ready 3 0")
    pump(relay)
    assert received(dealer) == [[m] for m in messages[:3]]
    dealer.send(b"ready 10 0")
    pump(relay)
    assert received(dealer) == [[m] for m in messages[3:]]


def test_bye_ack_follows_the_last_message_and_nothing_comes_after(inproc_relay):
    relay, push, dealer = inproc_relay
    dealer.send(b"ready 100 0")
    pump(relay, 0.1)
    for n in range(20):
        push.send(b"uuid %d / 2:{},0:," % n)
    pump(relay, 0.1)
    dealer.send(b"bye")
    pump(relay, 0.1)
    push.send(b"uuid 99 / 2:{},0:,")  # after the bye: held for another worker
    pump(relay, 0.1)
    frames = received(dealer)
    assert frames[-1] == [b"", b"bye-ack"]
    assert [f[0] for f in frames[:-1]] == [b"uuid %d / 2:{},0:," % n for n in range(20)]


def test_a_restarted_relay_learns_its_idle_workers_again(tmp_path, fake):
    bind = f"ipc://{tmp_path / 'relay.ipc'}"
    argv = [sys.executable, "-m", "m2bridge", "relay", "--send-spec", fake.send_spec]
    argv += ["--bind", bind]
    with running(argv, tmp_path / "relay1.log") as first, worker(tmp_path, fake, bind, "w1"):
        assert fake.response(fake.request("/hello/")).status == 200
        os.kill(first.pid, signal.SIGTERM)
        first.wait(10)
        with running(argv, tmp_path / "relay2.log"):
            conn_id = fake.request("/hello/")
            assert fake.response(conn_id, timeout=5).status == 200  # after its idle grant


def test_a_worker_that_vanishes_without_bye_has_its_connections_closed(tmp_path, fake):
    with stepped_relay(tmp_path, fake.send_spec, (fake.recv_spec,)) as (relay, context):
        dealer = relay_socket(context, zmq.DEALER, tmp_path, "relay.ipc")
        dealer.send(b"ready 10 0")
        pump(relay, 0.2)
        held = [fake.request("/spin") for _ in range(3)]
        pump(relay, 0.2)
        assert len(received(dealer, 100)) == 3  # the worker has them, and never answers
        dealer.close(0)  # killed: its pipe closes without a bye
        pump(relay, 0.3)
        assert fake.wait_for(lambda: all(fake.is_closed(c) for c in held), timeout=2)


def test_a_worker_lost_with_requests_it_never_started_has_them_answered_by_another(tmp_path, fake):
    """With ``--resend``: w1 is frozen (SIGSTOP), so what the relay sends it meanwhile is never
    started; killed then, it leaves those to w2, which answers every one."""
    with (
        relay(tmp_path, fake, "--resend", "--recv-spec", fake.recv_spec) as bind,
        worker(tmp_path, fake, bind, "w1") as w1,
    ):
        assert fake.response(fake.request("/hello/")).status == 200
        os.kill(w1.proc.pid, signal.SIGSTOP)
        try:
            held = [fake.request("/hello/", query=f"n={n}") for n in range(10)]
            time.sleep(0.3)  # routed to w1: the only worker, with credit
            with worker(tmp_path, fake, bind, "w2") as w2:
                os.kill(w1.proc.pid, signal.SIGKILL)
                assert all(_answered(fake, conn_id) for conn_id in held)
                time.sleep(1.2)  # stats files are rewritten about once a second
                assert served(w2) >= len(held)
        finally:
            os.kill(w1.proc.pid, signal.SIGCONT)
        log = (tmp_path / "relay.log").read_text()
        assert f"{len(held)} request(s) it had not started sent again" in log, log


def test_a_resending_relay_closes_only_the_connections_a_lost_worker_started(tmp_path, fake):
    with stepped_relay(tmp_path, fake.send_spec, (fake.recv_spec,), resend=True) as (
        relay,
        context,
    ):
        lost, other = (relay_socket(context, zmq.DEALER, tmp_path, "relay.ipc") for _ in "lo")
        lost.send(b"ready 10 0")
        pump(relay, 0.2)
        blank, count = lost.recv_multipart()
        assert blank == b""
        parsed = wire.parse_count(count)
        assert parsed is not None
        gated, generation = parsed
        assert gated
        ids = [fake.request("/spin", query=f"n={n}") for n in range(3)]
        pump(relay, 0.2)
        assert len(received(lost, 100)) == 3
        lost.send(wire.encode_start(generation, 1, []))  # it runs the first only
        pump(relay, 0.2)
        assert received(lost, 100) == [[b"", b"go 1"]]
        other.send(b"ready 10 0")
        pump(relay, 0.2)
        lost.close(0)  # killed
        pump(relay, 0.3)
        assert fake.wait_for(lambda: fake.is_closed(ids[0]), timeout=2)
        again = [message[0] for message in received(other)]
        assert [frame.split(b" ", 2)[1] for frame in again] == [b"%d" % c for c in ids[1:]]
        assert not any(fake.is_closed(conn_id) for conn_id in ids[1:])


def test_a_resending_relay_logs_a_worker_that_runs_without_start(tmp_path, caplog):
    with stepped_relay(tmp_path, resend=True) as (relay, context):
        push = relay_socket(context, zmq.PUSH, tmp_path, "m2.ipc")
        dealer = relay_socket(context, zmq.DEALER, tmp_path, "relay.ipc")
        dealer.send(wire.encode_grant(MAX_UNSTARTED + 10, 0))  # and never a start
        pump(relay, 0.2)
        for n in range(MAX_UNSTARTED + 1):
            push.send(b"uuid %d / 2:{},0:," % n)
        with caplog.at_level("WARNING", logger="m2bridge.relay.router"):
            pump(relay, 0.5)
        assert len(received(dealer)) == MAX_UNSTARTED + 1
        assert "runs what it reads without asking (start)" in caplog.text
        assert relay.state.peers[dealer_peer(relay)].asks is False


def dealer_peer(relay: Relay) -> bytes:
    """The one worker the relay knows."""
    (peer,) = relay.state.peers
    return peer


class RouterSends:
    """Stands for the relay's ROUTER sends (``Relay._send``): records what each worker is
    sent, and fails for a worker in ``gone``, as ``ROUTER_MANDATORY`` does."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.gone: set[bytes] = set()

    def __call__(self, peer: bytes, *frames: bytes) -> bool:
        if peer in self.gone:
            return False
        self.sent.append((peer, frames[-1]))
        return True

    def frames(self) -> list[bytes]:
        return [frame for _, frame in self.sent]


def test_requests_sent_again_while_held_ones_are_released_are_each_held_once(tmp_path, monkeypatch):
    """Releasing held requests on a grant, one goes to a worker found gone on that send: its
    copies (that one among them) are held again, ahead, each once; Mongrel2's PULL stays
    unread while anything is held."""
    sends = RouterSends()
    with stepped_relay(tmp_path, resend=True) as (relay, _):
        monkeypatch.setattr(relay, "_send", sends)
        r1, r2, r3, r4 = (b"uuid %d / 2:{},0:," % n for n in range(1, 5))
        relay.state.ready(b"P", 0, 2)
        assert relay._forward(0, r1)
        assert relay._forward(0, r2)  # P holds 1 and 2, never started
        assert not relay._forward(0, r3)  # no credit anywhere
        relay._hold(0, [r3, r4])
        sends.gone.add(b"P")  # and then P is gone
        del sends.sent[:]
        relay.state.ready(b"P", 0, 1)
        relay.state.ready(b"Q", 0, 1)
        relay._release(0)  # 3 or 4 to P, gone: its copies go to Q (1 credit) or are held
        assert len(sends.sent) == 1
        assert sorted(sends.frames() + list(relay._held[0])) == [r1, r2, r3, r4]
        assert relay.pulls[0] not in dict(relay.poller.sockets)
        relay.state.ready(b"Q", 0, 10)
        relay._release(0)
        assert sorted(sends.frames()) == [r1, r2, r3, r4]  # each once
        assert {peer for peer, _ in sends.sent} == {b"Q"}
        assert not relay._held[0]
        assert relay.pulls[0] in dict(relay.poller.sockets)


def test_the_last_held_request_sent_to_a_worker_found_gone_is_held_again_without_a_crash(
    tmp_path, monkeypatch
):
    """The held queue empties (its one request is being sent) and fills again with the gone
    worker's copies: Mongrel2's PULL is unregistered once, registered again once all left."""
    sends = RouterSends()
    with stepped_relay(tmp_path, resend=True) as (relay, _):
        monkeypatch.setattr(relay, "_send", sends)
        r1, r2, r3 = (b"uuid %d / 2:{},0:," % n for n in range(1, 4))
        relay.state.ready(b"P", 0, 2)
        assert relay._forward(0, r1)
        assert relay._forward(0, r2)
        assert not relay._forward(0, r3)
        relay._hold(0, [r3])
        sends.gone.add(b"P")
        relay.state.ready(b"P", 0, 5)  # P has the most credit: r3 goes there, and fails
        relay.state.ready(b"Q", 0, 1)
        del sends.sent[:]
        relay._release(0)
        assert sends.frames() == [r1]  # Q's one credit: the first copy
        assert list(relay._held[0]) == [r2, r3]
        assert relay.pulls[0] not in dict(relay.poller.sockets)
        relay.state.ready(b"Q", 0, 5)
        relay._release(0)
        assert sends.frames() == [r1, r2, r3]
        assert relay.pulls[0] in dict(relay.poller.sockets)

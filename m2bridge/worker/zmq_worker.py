"""The ZeroMQ worker process: receive Mongrel2 messages, serve them in a gevent pool, reply.

Order of ``main`` (fixed, see docs/design.md): ``gevent.monkey.patch_all()`` first, then the
app is imported, then a fresh ``zmq.green`` context connects one XPUB + PULL pair per Mongrel2
(``transport``), then one receiving greenlet per pair hands each message to the
``dispatch.Dispatcher``, which queues requests on their ``connection`` in a ``Pool`` of
``--concurrency`` greenlets (plus the receivers). A plain request runs inline in the
receiving greenlet (``fast_path``); should its app block, the receiving role moves to a parked
pool greenlet (``blocked``), so there is always one greenlet receiving each pair.

SIGUSR1 reopens the ``--access-log`` file (logrotate). Stopping (SIGTERM, SIGINT, or
``--max-requests`` reached) follows gunicorn's ggevent worker:
stop receiving (messages already queued locally are still served, then the PULL disconnects so
Mongrel2 hands new requests to other workers), wait up to ``--graceful-timeout`` for requests in
flight, kill what is left (their clients get a close), flush replies and exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import warnings
from functools import partial
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

import gevent
from gevent import monkey
from gevent.event import Event
from gevent.pool import Pool

from m2bridge import zmqread
from m2bridge.config import request_limit
from m2bridge.loader import load_app
from m2bridge.logs import AccessLog, reopen_log_files, setup_logging
from m2bridge.wire.sender import default_sender
from m2bridge.worker.channel import Channel
from m2bridge.worker.connection import ConnectionTable
from m2bridge.worker.dispatch import Dispatcher
from m2bridge.worker.stats import (
    StatsFile,
    WorkerStats,
    publish_forever,
    stats_file_for,
    stop_publishing,
)
from m2bridge.worker.transport import Transport
from m2bridge.worker.wsapp import find_websocket_handler, with_websocket
from m2bridge.wsgi import speedups

if TYPE_CHECKING:
    from collections.abc import Sequence

    from m2bridge._types import WSGIApp
    from m2bridge.config import WorkerConfig
    from m2bridge.worker.sink import Sink

log = logging.getLogger("m2bridge.worker.zmq_worker")

#: Seconds the pool gets to unwind after the graceful timeout, when its greenlets are killed.
KILL_TIMEOUT = 1.0
#: Seconds a worker of several Mongrel2 servers (front ends, or several servers of one host)
#: waits for the others once one is connected before it reports ready: while one is down, it
#: serves the rest.
READY_GRACE = 2.0


def wait_connected(channels: Sequence[Channel], grace: float = READY_GRACE) -> None:
    """Return once every channel is connected to its Mongrel2, or ``grace`` seconds after the
    first one is (a worker of one channel: once it is)."""
    waiting = [gevent.spawn(channel.wait_ready, warn=False) for channel in channels]
    try:
        gevent.wait(waiting, count=1)
        gevent.wait(waiting, timeout=grace)
    finally:
        gevent.killall(waiting)


def main(config: WorkerConfig) -> int:
    """Run a worker until it is stopped; return the process exit status.

    Raises:
        AppImportError: the application cannot be loaded (before anything connects).
        ConfigError: a bad log level or access log path.
    """
    monkey.patch_all()
    setup_logging(config.log_level, config.log_format)
    app = load_app(config.app)
    if wants_validation(config):
        # The validator hides the app's WebSocket handler: keep it beside the wrapped app.
        websocket = find_websocket_handler(app)
        app = validating(app)
        if websocket is not None:
            app = with_websocket(app, websocket)
    access_log = AccessLog.open(config.access_log, config.access_log_format, config.log_format)
    try:
        return Worker(config, app, access_log).run()
    finally:
        if access_log is not None:
            access_log.close()


def wants_validation(config: WorkerConfig) -> bool:
    """Whether ``--validate`` was given (wrap the app in ``wsgiref.validate.validator``)."""
    return config.validate


def validating(app: WSGIApp) -> WSGIApp:
    """Wrap ``app`` so that any PEP 3333 violation (either side) fails its request with a 500.

    One relaxation: ``wsgi.input.read()`` without a size is allowed, because this server sets
    ``wsgi.input_terminated`` (the input ends at the body's end), the extension werkzeug and
    others rely on to read the body in one call.
    """
    import wsgiref.validate as wsgi_validate

    class TerminatedInput(wsgi_validate.InputWrapper):
        def read(self, *args: int) -> bytes:
            if not args:
                data: bytes = self.input.read()
                return data
            return super().read(*args)

    wsgi_validate.InputWrapper = TerminatedInput  # type: ignore[misc]
    warnings.simplefilter("error", wsgi_validate.WSGIWarning)
    return wsgi_validate.validator(app)


def default_sender_id(slot: int | None, hostname: str | None = None) -> str:
    """This worker's identity (``sender.default_sender`` on this host and process)."""
    host = socket.gethostname() if hostname is None else hostname
    return default_sender(host, slot, os.getpid())


class Worker:
    """One worker process: its transport, pool, connections and counters."""

    def __init__(
        self, config: WorkerConfig, app: WSGIApp, access_log: AccessLog | None = None
    ) -> None:
        self.config = config
        self.access_log = access_log
        self.stats = WorkerStats()
        # --concurrency requests at most, plus the greenlet receiving each channel's messages.
        self.pool = Pool(config.concurrency + len(config.send_specs))
        sender_id = config.sender_id.encode() if config.sender_id else None
        self.table = ConnectionTable(self.pool, sender_id)
        self.dispatcher = Dispatcher(
            app, config, self.table, self.stats, access_log, self._count_request
        )
        self.stopping = Event()
        self.limit = request_limit(config.max_requests, config.max_requests_jitter)
        self.accepted = 0
        self._waiting: set[int] = set()  # channels whose receiver is blocked in recv()
        #: The greenlet receiving each channel's messages now (the role moves when an app
        #: running inline blocks; see ``blocked``), and the event set when it stops receiving.
        self._receivers: dict[int, gevent.Greenlet[..., Any]] = {}
        self._stopped_receiving: dict[int, Event] = {}
        #: Greenlets running an inline request now (``fast_path``): the drain waits for them.
        self.running: set[Any] = set()
        if self.dispatcher.fast_path is not None:
            self.dispatcher.fast_path.inline = self

    def run(self) -> int:
        """Connect, serve until stopped, drain, and return 0."""
        config = self.config
        identity = config.sender_id or default_sender_id(config.worker_slot)
        transport = Transport(config.send_specs, config.recv_specs, identity, config.relay)
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, self.stopping.set)
        gevent.signal_handler(signal.SIGUSR1, reopen_log_files, self.access_log)
        for channel in transport.channels:
            self._stopped_receiving[channel.index] = Event()
            self._receivers[channel.index] = self.pool.spawn(self._receive, channel)
        stats_file = stats_file_for(config.stats_file, self.stats)
        publisher = self._start_publisher(stats_file, transport.channels)
        log.info("worker serving %s with %d greenlets", self.config.app, self.config.concurrency)
        log.info("%s; %s", speedups.describe(), zmqread.describe())
        try:
            self.stopping.wait()
            log.info("worker stopping: %d connection(s) in flight", len(self.table))
            for channel in transport.channels:
                self._stop_receiving(channel)
            self._drain()
        finally:
            self.table.abort_all()
            self.dispatcher.close()
            stop_publishing(publisher, stats_file)
            transport.close()
        log.info("worker exiting after %d request(s)", self.stats.served)
        return 0

    def _receive(self, channel: Channel) -> None:
        """Receive ``channel``'s messages while this greenlet holds the role."""
        me = gevent.getcurrent()
        index = channel.index
        dispatch = self.dispatcher.dispatch
        waiting = self._waiting
        receivers = self._receivers
        try:
            while not self.stopping.is_set() and receivers.get(index) is me:
                waiting.add(index)
                frame: bytes | None = channel.recv()
                waiting.discard(index)
                while frame is not None:  # then take what else is queued without waiting
                    dispatch(channel, frame)
                    if receivers.get(index) is not me:
                        return  # an app running inline here blocked: the role moved on
                    frame = None if self.stopping.is_set() else channel.recv_nowait()
        finally:
            if receivers.get(index) is me:  # else the holder now is waiting, or will
                waiting.discard(index)
                self._stopped_receiving[index].set()

    # ------------------------------------------------------------------ inline requests

    def allowed(self) -> bool:
        """A request may run inline in the receiving greenlet (not once stopping)."""
        return not self.stopping.is_set()

    def blocked(self, channel: Sink) -> None:
        """The receiving greenlet blocked inside an app running inline (a hub callback):
        another greenlet receives meanwhile (a parked one of the pool: no spawn)."""
        receive = partial(self._receive, cast(Channel, channel))
        self._receivers[channel.index] = self.table.hand_over(receive)

    def _stop_receiving(self, channel: Channel) -> None:
        index = channel.index
        receiver = self._receivers[index]
        if index in self._waiting:
            receiver.kill()  # blocked in recv(): no message is lost
        self._stopped_receiving[index].wait()  # or finishing a dispatch: it sees ``stopping``
        channel.start_draining()  # with a relay: bye, then read up to its ack
        while (frame := channel.recv_nowait()) is not None:
            self.dispatcher.dispatch(channel, frame)  # already delivered to us: serve it
        channel.stop_receiving()

    def _drain(self) -> None:
        self.table.release_idle()  # parked pool greenlets exit, so the join can end
        deadline = monotonic() + self.config.graceful_timeout
        outside = [glet for glet in self.running if glet not in self.pool]  # pool full, rare
        done = self.pool.join(timeout=self.config.graceful_timeout)
        if done and outside:
            gevent.joinall(outside, timeout=max(0.0, deadline - monotonic()))
            done = all(glet.dead for glet in outside)
        if not done:
            log.warning(
                "graceful timeout (%ss): cancelling %d request(s)",
                self.config.graceful_timeout,
                len(self.table),
            )
            self.pool.kill(timeout=KILL_TIMEOUT)
            gevent.killall(outside, timeout=KILL_TIMEOUT)

    def _count_request(self) -> None:
        self.accepted += 1
        if self.limit and self.accepted >= self.limit and not self.stopping.is_set():
            log.info("served --max-requests (%d): restarting", self.limit)
            self.stopping.set()

    def _start_publisher(
        self, stats_file: StatsFile | None, channels: list[Channel]
    ) -> gevent.Greenlet[..., None] | None:
        """Publish the counters once ``wait_connected`` returns (the supervisor's readiness
        signal), then every ``PUBLISH_INTERVAL``."""
        if stats_file is None:
            return None
        return gevent.spawn(
            publish_forever, stats_file, gevent.sleep, lambda: wait_connected(channels)
        )

"""A non-blocking poller of one Mongrel2 control port, driven by the supervisor's loop.

Every ``interval`` seconds a round asks ``status what=net`` then ``status what=tasks`` on a REQ
socket; every send and receive is NOBLOCK, so the one-thread loop never waits on Mongrel2. The
loop registers ``socket`` (read it afresh on each poll: it is replaced after a timeout) for
POLLIN, calls ``on_readable(now)`` when it is readable and ``tick(now)`` on every turn. A request
unanswered within ``timeout`` seconds (or that cannot even be queued) means the port is not
answering: REQ is lockstep, so the socket is closed and a new one connected for the next round.
Neither method raises; a change of error is logged once, not every round.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import zmq

from m2bridge.supervisor.mongrel2_status import (
    encode_status_request,
    open_connections,
    parse_status_reply,
    task_count,
)

log = logging.getLogger("m2bridge.supervisor")

#: One round, in order.
ROUND = ("net", "tasks")
#: Largest reply accepted (a table of a few thousand connections fits easily).
MAX_REPLY = 16 * 1024 * 1024


class Mongrel2Probe:
    """Polls ``endpoint`` (see ``mongrel2_status.control_endpoint``) for connections and tasks.

    ``context`` is shared if given (and then left open by ``close``), else owned.
    """

    def __init__(
        self,
        endpoint: str,
        interval: float = 1.0,
        timeout: float = 2.0,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.interval = interval
        self.timeout = timeout
        self._owns_context = context is None
        self.context: zmq.Context[Any] = zmq.Context() if context is None else context
        self.socket: zmq.Socket[bytes] = self.context.socket(zmq.REQ)
        self._connect_error = ""
        self._connect()
        self._awaiting: str | None = None  # the ``what`` of the request in flight
        self._sent_at = 0.0
        self._next_round = -math.inf
        self._round_connections: int | None = None
        self._answered_at: float | None = None  # when the last full round completed
        self._connections: int | None = None
        self._tasks: int | None = None
        self._error = ""
        self._stopped = False  # closed, or cannot make a socket any more: tick and reads do nothing
        self._closed = False

    # -- the loop's calls --------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Give up on an overdue request; start a round when one is due. Never raises."""
        if self._stopped:
            return
        try:
            if self._awaiting is not None and now - self._sent_at >= self.timeout:
                self._fail(f"no answer in {self.timeout:g} s")
                self._reset()
            if self._awaiting is None and now >= self._next_round:
                self._next_round = now + self.interval
                self._start_round(now)
        except Exception as exc:  # a bug here must not take the supervisor down
            self._broken(exc)

    def on_readable(self, now: float) -> None:
        """Read the reply that arrived, if any (NOBLOCK), and go on with the round. Never raises."""
        if self._stopped:
            return
        try:
            self._receive(now)
        except Exception as exc:
            self._broken(exc)

    def snapshot(self, now: float) -> dict[str, Any]:
        """What is known now: ``endpoint``, ``answering`` (a full round answered within the last
        ``3 * interval + timeout`` seconds, and no request timed out since), ``connections`` and
        ``tasks`` (from that round; None when not answering), ``error`` ("" when fine) and
        ``failing``: a request failed (timed out, or a bad reply) since the last good round,
        which not having been asked yet is not."""
        window = 3 * self.interval + self.timeout
        answered_at = self._answered_at
        answering = answered_at is not None and now - answered_at <= window and not self._error
        error = self._error
        if not answering and not error:
            error = "no answer yet" if answered_at is None else f"no answer in {window:g} s"
        return {
            "endpoint": self.endpoint,
            "answering": answering,
            "connections": self._connections if answering else None,
            "tasks": self._tasks if answering else None,
            "error": error,
            "failing": bool(self._error),
        }

    def close(self) -> None:
        """Close the socket (and the context when owned); idempotent."""
        if self._closed:
            return
        self._closed = self._stopped = True
        self.socket.close(linger=0)
        if self._owns_context:
            self.context.term()

    # -- internals ---------------------------------------------------------------------------

    def _start_round(self, now: float) -> None:
        if self._connect_error:  # e.g. an ipc path too long: try again each round
            self._reset()
        if self._connect_error:
            self._fail(self._connect_error)
            return
        self._round_connections = None
        self._send(ROUND[0], now)

    def _receive(self, now: float) -> None:
        if self._awaiting is None:
            return  # a stray wake-up: REQ cannot hold a reply that was not asked for
        try:
            data = self.socket.recv(zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno in (zmq.EAGAIN, zmq.EFSM):  # nothing yet, or the send was not queued
                return
            raise
        what, self._awaiting = self._awaiting, None
        try:
            table = parse_status_reply(data)
            count = open_connections(table) if what == "net" else task_count(table)
        except ValueError as exc:
            self._fail(f"status what={what}: {exc}")
            return  # the round is over; the next one starts on time
        if what == "net":
            self._round_connections = count
            self._send("tasks", now)
            return
        self._connections, self._tasks = self._round_connections, count
        self._answered_at = now
        self._set_error("")

    def _send(self, what: str, now: float) -> None:
        self._awaiting, self._sent_at = what, now
        # Not even queued (no peer pipe): counts as no answer once ``timeout`` has passed.
        with contextlib.suppress(zmq.Again):
            self.socket.send(encode_status_request(what), zmq.NOBLOCK)

    def _fail(self, error: str) -> None:
        """The port did not answer properly: the current round is lost."""
        self._awaiting = None
        self._set_error(error)

    def _broken(self, exc: Exception) -> None:
        """An unexpected error (a zmq state error, a bug): start afresh with a new socket."""
        self._fail(f"probe error: {exc!r}")
        try:
            self._reset()
        except Exception as again:  # only when zmq itself is gone (a terminated context)
            self._stopped = True
            self._set_error(f"probe stopped: cannot recreate its socket: {again!r}")

    def _reset(self) -> None:
        """A new REQ socket: an unanswered REQ cannot send again (and a late reply is dropped)."""
        self.socket.close(linger=0)
        self.socket = self.context.socket(zmq.REQ)
        self._connect()

    def _connect(self) -> None:
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY)
        try:
            self.socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self._connect_error = f"cannot connect to {self.endpoint}: {exc}"
        else:
            self._connect_error = ""

    def _set_error(self, error: str) -> None:
        if error == self._error:
            return
        if error:
            log.warning("mongrel2 control %s: %s", self.endpoint, error)
        else:
            log.info("mongrel2 control %s: answering again", self.endpoint)
        self._error = error

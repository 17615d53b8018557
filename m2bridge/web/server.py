"""The ``m2bridge web`` process: a gevent WSGI server, the collector greenlet that polls the
supervisor every interval, and the hub that streams each update to the open pages.

One process, one gevent hub, no monkey-patching (gevent's server and ``zmq.green`` need none).
TERM or INT ends every event stream, stops the server and closes the control connection.
"""

from __future__ import annotations

import logging
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import gevent
from gevent.event import Event as GeventEvent
from gevent.pywsgi import WSGIServer

from m2bridge.errors import ControlError
from m2bridge.web.app import ConsoleApp, ConsoleConfig, Event
from m2bridge.web.client import GreenClient
from m2bridge.web.hub import Hub
from m2bridge.web.series import History, Snapshot, health

log = logging.getLogger("m2bridge.web")


@dataclass(frozen=True)
class WebSettings:
    """What ``m2bridge web`` was asked to do.

    Attributes:
        host, port: where the console listens.
        endpoint, control_token, timeout: the supervisor's control endpoint, its token
            (tcp:// only) and how long to wait for an answer.
        token: the console token (None: open to loopback clients).
        interval: seconds between two polls.
    """

    host: str
    port: int
    endpoint: str
    control_token: str | None = None
    timeout: float = 5.0
    token: str | None = None
    interval: float = 1.0


class Caller(Protocol):
    """What the collector needs of a control client (GreenClient, or a fake)."""

    endpoint: str

    def call(self, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]: ...


class Collector:
    """Polls ``stats``, ``status`` and ``dstats`` every interval into a History and publishes
    each update; the console's ``Source``."""

    def __init__(self, client: Caller, hub: Hub, interval: float) -> None:
        self.client = client
        self.hub = hub
        self.interval = interval
        self.history = History()
        self.error: str | None = "not polled yet"
        self._snapshot: dict[str, Any] = {"stats": {"watchers": []}, "status": {"watchers": []}}
        self._supervisor: dict[str, Any] = {}
        self._at: float | None = None
        self._down = False

    def run(self) -> None:
        """Poll forever, one poll per interval (a slow answer delays the next one only)."""
        failure = ""
        while True:
            started = time.monotonic()
            try:
                self.poll()
            except Exception as exc:  # an answer of an unexpected shape must not end the polls
                if repr(exc) != failure:
                    log.exception("poll failed")
                failure, self.error = repr(exc), f"cannot read the supervisor's answer: {exc!r}"
            else:
                failure = ""
            gevent.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def poll(self) -> None:
        """One poll: add a point (or note the error) and publish an ``update``."""
        point = None
        try:
            stats = self.client.call("stats")
            status = self.client.call("status")
            self._supervisor = self.client.call("dstats")
        except ControlError as exc:
            if not self._down:  # once per outage, not once per poll
                log.warning("supervisor at %s: %s", self.client.endpoint, exc)
            self._down, self.error = True, str(exc)
        else:
            if self._down:
                log.info("supervisor at %s answers again", self.client.endpoint)
            self._down, self.error = False, None
            self._at = time.time()
            point = self.history.add(Snapshot(self._at, time.monotonic(), stats, status))
            self._snapshot = {"stats": stats, "status": status}
        self.hub.publish("update", {"point": point, "state": self.state()})

    def state(self) -> dict[str, Any]:
        """The latest snapshot, its point and how the console is doing (``/api/state``)."""
        return {
            "at": self._at,
            "error": self.error,
            "endpoint": self.client.endpoint,
            "interval": self.interval,
            "supervisor": self._supervisor,
            **self._snapshot,
            "health": health(self._snapshot["status"]),
            "point": self.history.last(),
            "subscribers": len(self.hub),
        }

    def subscribe(self) -> Iterator[Event | None]:
        return self.hub.subscribe(
            lambda: ("history", {"points": self.history.points(), "state": self.state()})
        )

    def command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.client.call(name, args)


def serve(settings: WebSettings) -> int:
    """Run the console until TERM or INT; returns the exit code (1: cannot listen)."""
    client = GreenClient(settings.endpoint, settings.timeout, settings.control_token)
    hub = Hub()
    collector = Collector(client, hub, settings.interval)
    config = ConsoleConfig(secrets.token_urlsafe(32), settings.token, frozenset({settings.host}))
    app = ConsoleApp(collector, config)
    server = WSGIServer((settings.host, settings.port), app, log=None, error_log=log)
    try:
        server.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        client.close()
        return 1
    host, port = str(server.server_host), server.server_port
    shown = f"[{host}]" if ":" in host else host
    access = "console token required" if settings.token else "no token (loopback clients only)"
    log.info("listening on http://%s:%d/ for %s; %s", shown, port, settings.endpoint, access)
    stop = GeventEvent()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    poller = gevent.spawn(collector.run)
    stop.wait()
    log.info("stopping")
    hub.close()
    server.stop(timeout=2)
    poller.kill()
    client.close()
    return 0

"""The sibling notice bus: workers sharing one Handler pass Mongrel2's notices to each other.

Mongrel2's PUSH socket deals every message round-robin over the handlers connected to one
``send_spec``, notices (``Disconnect``, ``Credits``) included (docs/protocol.md). With several
workers on one Handler, the worker serving a connection would see only some of its notices.

Each worker of a watcher binds a PUB at ``ipc://<notice dir>/<slot>.ipc`` and connects one SUB
to every other ``*.ipc`` endpoint it finds in that directory (re-scanned every
``STARTUP_SCAN`` s for the first ``STARTUP_PERIOD`` s, then every ``SCAN_INTERVAL`` s, so
siblings started together or later by incr/reload are found; an endpoint of a sibling that
stopped costs a reconnect attempt now and then, and a restarted slot binds the
same path again). Which notices are shared is ``wire.notice.should_share``. A shared notice
travels as two frames: the ``send_spec`` it came from (connection ids are per server) and
Mongrel2's raw message bytes.
A worker applies a shared notice if it knows the connection and never shares it again.

A notice published before a sibling's SUB has connected is lost (ZeroMQ's slow joiner), which
matters for one kind: an upload's ``start``, whose ``done`` Mongrel2 may deal to a sibling that
was still starting. The PUB is therefore an XPUB that sees each sibling subscribe, and then
publishes again the starts whose ``done`` this worker still waits for (``holds``); a sibling
that already served one ignores it (``uploads.UploadTracker(remember_claims)``).

The bus runs only when the supervisor passes ``M2BRIDGE_NOTICE_DIR`` and the worker knows its
slot; a standalone ``m2bridge serve`` opens nothing. Other notices published before a
sibling's SUB has connected are lost, as are those sent while a sibling is down.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import gevent
import zmq.green as zmq

from m2bridge import environment
from m2bridge.wire.notice import should_share
from m2bridge.wire.protocol import Disconnect, UploadStarted

log = logging.getLogger("m2bridge.worker.siblings")

#: The environment variable holding the directory of one watcher's notice endpoints.
#: Seconds between scans of the notice directory for new siblings.
SCAN_INTERVAL = 1.0
#: Siblings usually start together: for this long after opening, scan every STARTUP_SCAN s,
#: so a notice shared right after the workers are ready (an upload's start) is not lost.
STARTUP_PERIOD = 3.0
STARTUP_SCAN = 0.05
#: Longest ipc endpoint path (Linux ``sun_path`` holds 107 bytes plus NUL).
MAX_IPC_PATH = 107
#: Shared notices a slow sibling may fall behind by before newer ones are dropped.
SEND_HWM = 10000
#: Upload starts kept for replay to siblings that connect later (the oldest go first).
MAX_REPLAYED = 1024
_SUBSCRIPTION = b"\x01"  # what an XPUB reads when a SUB subscribes
_ENDPOINT_RE = re.compile(r"([0-9]{1,9})\.ipc\Z")


class Spec(Protocol):
    """What the bus needs to know of a transport channel."""

    @property
    def index(self) -> int: ...

    @property
    def send_spec(self) -> str: ...


C = TypeVar("C")
#: Applies a notice shared by a sibling: ``(channel it came from, raw Mongrel2 message)``.
ApplyNotice = Callable[[Any, bytes], None]
#: Whether this worker still waits for an upload's ``done``: ``(channel index, conn id, path)``.
HoldsUpload = Callable[[int, int, str], bool]


def _holds_nothing(channel_index: int, conn_id: int, path: str) -> bool:
    return False


def encode_shared(send_spec: str, frame: bytes) -> list[bytes]:
    """The frames of one shared notice."""
    return [send_spec.encode(), frame]


def decode_shared(parts: Sequence[bytes], channels: Mapping[bytes, C]) -> tuple[C, bytes]:
    """``(channel, raw message)`` of a shared notice (``channels``: by encoded send_spec).

    Raises:
        ValueError: not two frames, or a ``send_spec`` this worker does not serve.
    """
    if len(parts) != 2:
        raise ValueError(f"expected 2 frames, got {len(parts)}")
    spec, frame = parts
    channel = channels.get(spec)
    if channel is None:
        raise ValueError(f"unknown send_spec {spec[:80]!r}")
    return channel, frame


def sibling_endpoints(names: Sequence[str], directory: Path, slot: int) -> list[str]:
    """The ipc endpoints of the other slots among the file ``names`` of the notice directory."""
    found = []
    for name in sorted(names):
        match = _ENDPOINT_RE.match(name)
        if match and int(match.group(1)) != slot:
            found.append(f"ipc://{directory / name}")
    return found


class SiblingBus:
    """This worker's PUB endpoint and its SUB connected to every sibling's endpoint."""

    def __init__(
        self,
        context: zmq.Context[Any],
        directory: Path,
        slot: int,
        channels: Sequence[Spec],
        apply: ApplyNotice,
        holds: HoldsUpload = _holds_nothing,
    ) -> None:
        self.directory = directory
        self.slot = slot
        self.endpoint = f"ipc://{directory / f'{slot}.ipc'}"
        self._channels = {ch.send_spec.encode(): ch for ch in channels}
        self._specs = {ch.index: ch.send_spec for ch in channels}
        self._apply = apply
        self._holds = holds
        self._connected: set[str] = set()
        #: (channel index, conn id) -> (upload path, raw start message), for ``_replay``.
        self._starts: OrderedDict[tuple[int, int], tuple[str, bytes]] = OrderedDict()
        self._pub = context.socket(zmq.XPUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        self._pub.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._pub.setsockopt(zmq.XPUB_VERBOSE, 1)  # every sibling's subscription, not the first
        self._sub = context.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            self._pub.bind(self.endpoint)
        except zmq.ZMQError:
            self._sub.close(0)
            self._pub.close(0)
            raise
        self._scan()
        self._greenlets = [
            gevent.spawn(self._receive),
            gevent.spawn(self._scan_forever),
            gevent.spawn(self._watch_subscribers),
        ]

    @property
    def siblings(self) -> int:
        """How many sibling endpoints the SUB is connected to."""
        return len(self._connected)

    def notice(self, channel_index: int, frame: bytes, event: object, has_work: bool) -> None:
        """A notice from Mongrel2 was handled here: share it if ``should_share`` says so."""
        if isinstance(event, UploadStarted):
            self._remember_start(channel_index, event, frame)
        elif isinstance(event, Disconnect):
            self._starts.pop((channel_index, event.conn_id), None)
        if should_share(event, has_work):
            self.share(self._specs[channel_index], frame)

    def _remember_start(self, channel_index: int, event: UploadStarted, frame: bytes) -> None:
        key = (channel_index, event.conn_id)
        self._starts.pop(key, None)
        self._starts[key] = (event.upload_path, frame)
        if len(self._starts) > MAX_REPLAYED:
            self._starts.popitem(last=False)

    def _replay(self) -> None:
        """A sibling subscribed: publish again the starts whose ``done`` is still awaited."""
        for key, (path, frame) in list(self._starts.items()):
            if self._holds(key[0], key[1], path):
                self.share(self._specs[key[0]], frame)
            else:  # served here, or the client left: nothing to replay any more
                del self._starts[key]

    def share(self, send_spec: str, frame: bytes) -> None:
        """Publish one notice to every sibling (dropped, not blocking, if they fall behind)."""
        try:
            self._pub.send_multipart(encode_shared(send_spec, frame), zmq.NOBLOCK)
        except zmq.Again:
            log.debug("sibling notice dropped: siblings are behind")

    def close(self) -> None:
        """Stop receiving, remove our endpoint and close both sockets."""
        gevent.killall(self._greenlets, block=False)
        self._sub.close(0)
        self._pub.close(0)
        # libzmq 4.3 leaves the socket file behind; a slot is held by one live process at a
        # time (the supervisor's rule), so the file is ours to remove.
        (self.directory / f"{self.slot}.ipc").unlink(missing_ok=True)

    def _receive(self) -> None:
        while True:
            parts: list[bytes] = self._sub.recv_multipart()
            try:
                channel, frame = decode_shared(parts, self._channels)
            except ValueError as exc:
                log.warning("bad sibling notice ignored: %s", exc)
                continue
            self._apply(channel, frame)

    def _watch_subscribers(self) -> None:
        while True:
            message: bytes = self._pub.recv()
            if message[:1] == _SUBSCRIPTION:
                log.debug("a sibling subscribed: replaying %d upload start(s)", len(self._starts))
                self._replay()

    def _scan_forever(self) -> None:
        for _ in range(int(STARTUP_PERIOD / STARTUP_SCAN)):
            gevent.sleep(STARTUP_SCAN)
            self._scan()
        while True:
            gevent.sleep(SCAN_INTERVAL)
            self._scan()

    def _scan(self) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            log.warning("cannot scan sibling notice directory %s: %s", self.directory, exc)
            return
        for endpoint in sibling_endpoints(names, self.directory, self.slot):
            if endpoint not in self._connected:
                self._sub.connect(endpoint)
                self._connected.add(endpoint)
                log.debug("sibling notices from %s", endpoint)


def open_bus(
    context: zmq.Context[Any],
    slot: int | None,
    channels: Sequence[Spec],
    apply: ApplyNotice,
    environ: Mapping[str, str] = os.environ,
    holds: HoldsUpload = _holds_nothing,
) -> SiblingBus | None:
    """The bus of a worker run as one of several (slot known and ``M2BRIDGE_NOTICE_DIR`` set),
    else None. A directory that cannot be used disables the bus with a warning."""
    directory = environment.notice_dir(environ)
    if slot is None or not directory:
        return None
    path = Path(directory)
    if len(str(path / f"{slot}.ipc").encode()) > MAX_IPC_PATH:
        log.warning("sibling notices off: %s is too long for an ipc endpoint", path)
        return None
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        bus = SiblingBus(context, path, slot, channels, apply, holds)
    except (OSError, zmq.ZMQError) as exc:
        log.warning("sibling notices off: cannot bind in %s: %s", path, exc)
        return None
    log.info("sibling notices on: %s (%d sibling(s) found)", bus.endpoint, bus.siblings)
    return bus

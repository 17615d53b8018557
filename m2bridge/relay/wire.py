"""The words relay and worker exchange over the relay's ROUTER (one frame each way unless noted).

- worker -> relay: ``ready N SOURCE`` (N more messages of the relay's SOURCE-th send_spec),
  ``idle N SOURCE`` (sent after a second without messages: my credit is at least N; a
  restarted relay learns its workers again this way), ``start G K ID:SEQ ...`` and ``bye``
  (draining: route nothing more to me);
- relay -> worker: a Mongrel2 message unchanged, or two frames: ``""`` (never a Mongrel2
  message) and a control word: ``bye-ack``, ``count`` or ``go K``.

Numbering: the relay sends ``count G`` (or ``count start G``) when it first hears from a
worker, before any message; from there both count the messages it sends that worker, 1, 2,
... (G, the count's generation, tells a ``start`` meant for another count apart).
``start G K ID:SEQ ...`` says the worker has read up to message K, and reports the connections
it has finished (``ID:SEQ``: nothing of connection ID is in flight there, SEQ numbering the
last message of it read); the relay lets such a connection go if the last message of it
routed there is SEQ (``relay.state``).

After ``count start`` (a relay started with ``--resend``), a worker runs nothing before the
relay knows it may have: it reads a batch, sends ``start K`` and runs the batch once ``go K``
(or a later one) comes back. The relay keeps a copy of every message until a ``start`` covers
it: when a worker is lost, the messages not covered never ran, and the relay sends them to
another worker. A ``start`` whose K was sent before (nothing new read) gets no ``go``.

``bye-ack`` is sent right after ``bye`` is read, so it follows the last message routed to that
worker (a pipe is FIFO): a worker that reads until the ack has received everything. A relay
that did not know the worker (it dropped it as lost, and may have sent its messages
elsewhere) sends a ``count`` first, so a gated worker drops what was not cleared; otherwise
the ack clears everything read (the relay forgot that worker's copies at ``bye``).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Messages a worker lets the relay queue for it; it grants more every GRANT_BATCH read.
WINDOW = 32
GRANT_BATCH = 8
BYE = b"bye"
BYE_ACK = b"bye-ack"
#: What the relay sends after ``bye``: an empty frame (never a Mongrel2 message) then the ack.
BYE_ACK_FRAMES = (b"", BYE_ACK)
#: What the relay sends a worker it did not know, before any message: number from here; and
#: with ``start``, run nothing before the relay answers ``go`` (it sends what a lost worker
#: had not started to another worker: ``m2bridge relay --resend``).
COUNT = b"count"
COUNT_START = b"start"
#: The generation a relay sends a worker it cannot number (it does not know it): never one
#: of a known worker, so a ``start`` carrying it is never taken.
NO_GENERATION = 0
START = b"start"
GO = b"go"
#: Finished connections one ``start`` carries at most (a worker sends several if it must).
MAX_DONE = 256
READY = b"ready"
IDLE = b"idle"
_MAX_CREDIT_DIGITS = 9
_MAX_SEQ_DIGITS = 18


@dataclass(frozen=True, slots=True)
class Grant:
    """``ready``/``idle`` from a worker: ``credits`` more messages of send_spec ``source``."""

    credits: int
    source: int
    idle: bool


def encode_grant(credits: int, source: int, *, idle: bool = False) -> bytes:
    """The frame a worker sends to grant ``credits`` messages of ``source``."""
    return b"%s %d %d" % (IDLE if idle else READY, credits, source)


def parse_grant(frame: bytes) -> Grant | None:
    """``ready N SOURCE`` or ``idle N SOURCE`` -> a ``Grant``; anything else -> None."""
    words = frame.split()
    if len(words) != 3 or words[0] not in (READY, IDLE):
        return None
    if not (words[1].isdigit() and words[2].isdigit()) or len(words[1]) > _MAX_CREDIT_DIGITS:
        return None
    return Grant(int(words[1]), int(words[2]), words[0] == IDLE)


@dataclass(frozen=True, slots=True)
class Start:
    """``start`` from a worker numbering from the relay's ``count`` of ``generation``: it may
    run its messages up to number ``read`` once the relay answers; the connections in
    ``finished`` have nothing in flight there, each with the number of the last message of
    it the worker read."""

    generation: int
    read: int
    finished: tuple[tuple[bytes, int], ...]


def encode_start(generation: int, read: int, finished: list[tuple[int, int]]) -> bytes:
    """The frame a worker sends once it has read messages up to number ``read`` (counted
    from the ``count`` of ``generation``), reporting the ``(conn id, seq)`` pairs in
    ``finished``."""
    pairs = (b"%d:%d" % pair for pair in finished)
    return b" ".join([START, b"%d" % generation, b"%d" % read, *pairs])


def parse_start(frame: bytes) -> Start | None:
    """``start G K ID:SEQ ...`` -> a ``Start``; anything else (a bad pair too) -> None."""
    words = frame.split()
    if len(words) < 3 or words[0] != START or not _is_number(words[1]):
        return None
    if not _is_number(words[2]) or len(words) - 3 > MAX_DONE:
        return None
    finished = []
    for word in words[3:]:
        conn_id, sep, seq = word.partition(b":")
        if not (sep and conn_id.isdigit() and _is_number(seq)):
            return None
        finished.append((conn_id, int(seq)))
    return Start(int(words[1]), int(words[2]), tuple(finished))


def count_frames(gated: bool, generation: int) -> tuple[bytes, bytes]:
    """What the relay sends a worker it did not know: ``count G``, or ``count start G`` when
    the worker must wait for ``go`` before it runs what it read; its ``start`` messages then
    carry G, so one meant for an earlier count (a relay restarted, or a worker dropped and
    back) is told apart."""
    words = [COUNT, COUNT_START] if gated else [COUNT]
    return (b"", b" ".join([*words, b"%d" % generation]))


def parse_count(control: bytes) -> tuple[bool, int] | None:
    """``count G`` or ``count start G`` -> ``(gated, G)``; anything else -> None."""
    words = control.split()
    if len(words) not in (2, 3) or words[0] != COUNT or not _is_number(words[-1]):
        return None
    if len(words) == 3 and words[1] != COUNT_START:
        return None
    return len(words) == 3, int(words[-1])


def encode_go(read: int) -> tuple[bytes, bytes]:
    """The frames the relay answers ``start K`` with: the worker may run up to message K."""
    return (b"", b"%s %d" % (GO, read))


def parse_go(control: bytes) -> int | None:
    """The K of a ``go K`` control word, or None for another word."""
    word, _, number = control.partition(b" ")
    return int(number) if word == GO and _is_number(number) else None


def _is_number(word: bytes) -> bool:
    return word.isdigit() and len(word) <= _MAX_SEQ_DIGITS


def relay_sources(relays: tuple[str, ...], channels: int) -> list[tuple[str, int]]:
    """The relay endpoint and source index of each of a worker's ``channels`` (one per
    recv_spec, in order): one relay serves them all, its Nth source pairing with the Nth
    recv_spec; or one relay per channel (a front end each: its own Mongrel2 and relay), where
    a channel's source counts the earlier channels of the same relay.

    Raises:
        ValueError: neither one relay nor one per channel.
    """
    if len(relays) == 1:
        relays = relays * channels
    if len(relays) != channels or not channels:
        raise ValueError(f"give one relay, or one per recv_spec ({channels}), not {len(relays)}")
    return [(relay, relays[:index].count(relay)) for index, relay in enumerate(relays)]


def is_bye(frames: list[bytes]) -> bool:
    """Whether a worker's message is ``bye`` (one frame, surrounding blanks allowed)."""
    return len(frames) == 1 and frames[0].split() == [BYE]

"""The words relay and worker exchange over the relay's ROUTER (one frame each way unless noted).

- worker -> relay: ``ready N SOURCE`` (N more messages of the relay's SOURCE-th send_spec),
  ``idle N SOURCE`` (sent after a second without messages: my credit is at least N; a
  restarted relay learns its workers again this way) and ``bye`` (draining: route nothing
  more to me);
- relay -> worker: a Mongrel2 message unchanged, or the two frames ``""`` + ``bye-ack``, sent
  right after ``bye`` is read, so it follows the last message routed to that worker (an ipc
  pipe is FIFO): a worker that reads until the ack has received everything.

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
READY = b"ready"
IDLE = b"idle"
_MAX_CREDIT_DIGITS = 9


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

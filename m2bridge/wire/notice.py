"""Mongrel2's notices, and which messages the workers of one Handler must all see.

Mongrel2 sends a notice on the path ``@*`` (``METHOD: JSON``): ``{"type":"disconnect"}`` when a
client left, ``{"type":"credits"}`` with ``download.flow_control``. Its PUSH socket deals every
message round-robin over the handlers connected to one ``send_spec``, notices included, so
with several workers (or a relay in front of them) the worker serving a connection may not get
its notices. The rule, for the sibling bus (``worker.siblings``) and the relay
(``relay.state``):

- a disconnect concerns every worker that served the connection: always shared;
- an upload's start is shared too (Mongrel2 may deal its ``done`` to another worker);
- credits concern the worker writing the response: shared only when no request of that
  connection runs here.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from m2bridge.wire.protocol import NOTICE_PATH, Credits, Disconnect, UploadStarted

#: The notice path as it appears in a raw message (third field).
RAW_NOTICE_PATH = NOTICE_PATH.encode()
#: The events siblings may need (``should_share`` decides for one occurrence).
_SHARED_EVENTS = frozenset({Disconnect, Credits, UploadStarted})
#: The body of a disconnect notice holds this JSON string (and no other notice does).
_RAW_DISCONNECT = b'"disconnect"'


def concerns_siblings(event: object) -> bool:
    """Whether ``event`` is of a kind the sibling workers may need (cheap: a set lookup)."""
    return type(event) in _SHARED_EVENTS


def should_share(event: object, has_work_here: bool) -> bool:
    """Whether an event received from Mongrel2 must also go to the sibling workers.

    A disconnect always does (every worker must drop its state for the connection), and so
    does an upload start (Mongrel2 may deal its ``done`` to a sibling); credits do only when
    no request of that connection runs here (a sibling is writing it).
    """
    if not concerns_siblings(event):
        return False
    return not isinstance(event, Credits) or not has_work_here


def is_raw_notice(path: bytes) -> bool:
    """Whether a raw message's third field (its path) marks a notice."""
    return path == RAW_NOTICE_PATH


def is_raw_disconnect(rest: bytes) -> bool:
    """Whether the headers and body of a raw notice are a disconnect's (no parsing)."""
    return _RAW_DISCONNECT in rest

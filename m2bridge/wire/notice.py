"""Mongrel2's notices, recognised in a raw message without parsing it (for the relay).

Mongrel2 sends a notice on the path ``@*`` (``METHOD: JSON``): ``{"type":"disconnect"}`` when a
client left, ``{"type":"credits"}`` with ``download.flow_control``. Its PUSH socket deals every
message round-robin over the handlers connected to one ``send_spec``, notices included, so
several workers run behind the relay (``relay.state``), which sends a disconnect to every
worker that served the connection and credits to the one writing its response.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from m2bridge.wire.protocol import NOTICE_PATH

#: The notice path as it appears in a raw message (third field).
RAW_NOTICE_PATH = NOTICE_PATH.encode()
#: The body of a disconnect notice holds this JSON string (and no other notice does).
_RAW_DISCONNECT = b'"disconnect"'


def is_raw_notice(path: bytes) -> bool:
    """Whether a raw message's third field (its path) marks a notice."""
    return path == RAW_NOTICE_PATH


def is_raw_disconnect(rest: bytes) -> bool:
    """Whether the headers and body of a raw notice are a disconnect's (no parsing)."""
    return _RAW_DISCONNECT in rest

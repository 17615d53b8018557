"""The sender identity rule: what Mongrel2 accepts at the start of a message, and our default.

Mongrel2 1.12.2 parses a reply's UUID as ``[A-Za-z0-9-]+`` and silently drops any reply whose
UUID has another byte (``bad_uuid`` is dropped; MONGREL2.md 3.1); the requests it sends start
with its ``send_ident``, which follows the same rule. Every check and every generated identity
in m2bridge goes through this module.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import re

#: The rule as a regular expression (no anchors), for messages matched as a whole.
SENDER_PATTERN = rb"[A-Za-z0-9-]+"
#: The bytes a sender may hold: deleting them from a sender leaves nothing (faster than re).
SENDER_BYTES = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: What the rule says, for error messages.
SENDER_RULE = "[A-Za-z0-9-]+"
_OTHER_CHARACTERS = re.compile(r"[^A-Za-z0-9-]+")


def is_sender(value: bytes) -> bool:
    """Whether ``value`` is an identity Mongrel2 accepts (non-empty ``[A-Za-z0-9-]+``)."""
    return bool(value) and not value.translate(None, SENDER_BYTES)


def is_sender_text(value: str) -> bool:
    """``is_sender`` for text (a command-line value, say): ASCII only."""
    return value.isascii() and is_sender(value.encode("ascii"))


def default_sender(hostname: str, slot: int | None, pid: int) -> str:
    """A worker's own identity: ``m2bridge-<hostname>-<slot, else pid>`` made to fit the rule.

    The same slot on the same host gets the same identity across restarts.
    """
    suffix = slot if slot is not None else pid
    return _OTHER_CHARACTERS.sub("-", f"m2bridge-{hostname}-{suffix}")

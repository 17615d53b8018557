"""The do-nothing ZeroMQ handler: a ceiling for what a Python handler behind Mongrel2 can reach.

Plain blocking pyzmq, no gevent, no WSGI: each request gets the same pre-built reply at once.
For uploads it waits for ``x-mongrel2-upload-done``, deletes the temp file and replies (that
much any handler must do). Notices (``@*``) are never answered.

Run: ``python -m bench.canned_handler --send-spec S --recv-spec R --app hello [--chroot DIR]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import tnetstring
import zmq

from .workload import WORKLOADS, canned_body

log = logging.getLogger("bench.canned_handler")

UPLOAD_DONE = b"x-mongrel2-upload-done"


def http_response(body: bytes) -> bytes:
    """A complete keep-alive HTTP/1.1 200 response carrying ``body``."""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def reply_frame(sender: bytes, conn_id: bytes, payload: bytes) -> bytes:
    """``UUID LEN:ID, PAYLOAD`` for one connection."""
    return b"%s %d:%s, %s" % (sender, len(conn_id), conn_id, payload)


def upload_to_finish(rest: bytes, chroot: Path) -> tuple[bool, Path | None]:
    """(reply now?, temp file to delete) for a request whose headers and body are ``rest``."""
    headers, _ = tnetstring.pop(rest)
    done = headers.get(UPLOAD_DONE)
    if done:
        return True, chroot / done.decode("latin-1").lstrip("/")
    started = b"x-mongrel2-upload-start" in headers
    return not started, None


def serve(pull: zmq.Socket[bytes], pub: zmq.Socket[bytes], app: str, chroot: Path) -> None:
    """Answer requests until the process is signalled."""
    payload = http_response(canned_body(app))
    check_uploads = app == "post"
    while True:
        sender, conn_id, path, rest = pull.recv().split(b" ", 3)
        if path == b"@*":
            continue
        if check_uploads:
            answer, temp = upload_to_finish(rest, chroot)
            if temp is not None:
                temp.unlink(missing_ok=True)
            if not answer:
                continue
        pub.send(reply_frame(sender, conn_id, payload))


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, connect, and serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m bench.canned_handler")
    parser.add_argument("--send-spec", required=True)
    parser.add_argument("--recv-spec", required=True)
    parser.add_argument("--app", choices=sorted(WORKLOADS), default="hello")
    parser.add_argument("--chroot", default=".", help="Mongrel2's chroot (for upload files)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pub = ctx.socket(zmq.PUB)
    for sock in (pull, pub):
        sock.setsockopt(zmq.LINGER, 0)
    pull.connect(args.send_spec)
    pub.connect(args.recv_spec)
    log.info("canned handler %d serving %s", os.getpid(), args.app)
    try:
        serve(pull, pub, args.app, Path(args.chroot))
    except KeyboardInterrupt:
        pass
    finally:
        pull.close()
        pub.close()
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())

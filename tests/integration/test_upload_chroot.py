"""Async uploads in the stack shaped like the shipped demo (Mongrel2, relay, two workers): the
workers read the upload temp files from the ``mongrel2`` watcher's chroot (its run directory),
not from their own cwd."""

from __future__ import annotations

import hashlib
import http.client
import json
import os

from tests.helpers.stack import example_stack, running_stack, wait_active

#: Over demo.conf's limits.content_length (2 MiB): Mongrel2 writes it to an upload temp file.
BODY = bytes(range(256)) * (10 * 1024 + 7)


def post(port: int, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/upload", body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_upload_over_content_length_is_read_from_the_mongrel2_watchers_chroot(base):
    text, port = example_stack(base, "stack.toml")
    text = text.replace("handlers.hello:app", "handlers.upload:app")
    with running_stack(base, text) as stack:
        wait_active(stack, workers=2)
        status, answer = post(port, BODY)
        assert status == 200, (answer, stack.log())
        assert json.loads(answer)["sha256"] == hashlib.sha256(BODY).hexdigest()
        assert json.loads(answer)["size"] == len(BODY)
        temp_dir = stack.rundir / "mongrel2" / "tmp"
        # the stack directory (the workers' cwd) is not where Mongrel2 wrote the file...
        assert not (base / "tmp").exists()
        # ...and the worker deleted Mongrel2's temp file after the request
        assert [name for name in os.listdir(temp_dir) if name.startswith("upload.")] == []

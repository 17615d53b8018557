"""Record the golden request corpus from the real Mongrel2 binary (and the shared captures).

For every scenario below the same HTTP bytes are sent to two Mongrel2 servers that differ only
in their handler's ``protocol`` (``json`` and ``tnetstring``); a pyzmq PULL records exactly what
each server pushed. Each kept message is written as ``NAME.json`` / ``NAME.tnet`` (raw bytes)
plus ``NAME.expected.json``: the event ``m2bridge.wire.protocol.parse_message`` must return, derived
here independently from the scenario's declared event type and a plain tnetstring/JSON decode.
Fields that legitimately differ between the two servers (mkstemp upload names) are stored under
``json_overrides``. Bytes are written as latin-1 strings.

``import_shared()`` adds ``shared_*`` files from the raw captures in
``/work/shared/mongrel2-captures`` (tnetstring only): the ``.tnet`` is the captured message and the
``.json`` is the JSON-protocol equivalent encoded the way Mongrel2 does it (a netstring holding a
JSON object; only ``"`` and ``\\`` escaped, every other byte copied raw).

Rerun (needs Debian's ``mongrel2-core``, takes ~30 s, uses only 127.0.0.1 and free ports)::

    python tests/data/requests/capture.py            # rewrite the corpus beside this file
    python tests/data/requests/capture.py --out DIR  # somewhere else

Connection ids and upload temp names change between runs; every other byte stays the same.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tnetstring
import zmq

if TYPE_CHECKING:  # mypy checks the tree as packages; the script runs with its directory on path
    from tests.data.requests.scenarios import PROFILES, SCENARIOS, SHARED, Scenario
else:
    from scenarios import PROFILES, SCENARIOS, SHARED, Scenario

HERE = Path(__file__).resolve().parent
SHARED_DIR = Path("/work/shared/mongrel2-captures")
UUID = "54c6755b-9628-40a4-9a2d-cc82a816345e"  # one send_ident for both servers: equal senders
PROTOCOLS = {"json": "json", "tnet": "tnetstring"}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
QUIET = 0.3

CONF = """
h = Handler(send_spec='tcp://127.0.0.1:{send}', send_ident='{uuid}',
            recv_spec='tcp://127.0.0.1:{recv}', recv_ident='', protocol='{protocol}')
main = Server(uuid='capture-{tag}', access_log='/logs/access.log', error_log='/logs/error.log',
              chroot='./', pid_file='/run/mongrel2.pid', default_host='localhost', name='main',
              bind_addr='127.0.0.1', port={port},
              hosts=[Host(name='localhost', routes={{'/': h, '@chat': h}})])
settings = {settings}
servers = [main]
"""


# ----------------------------------------------------------------------------- wire decoding


def split_message(raw: bytes) -> tuple[bytes, int, bytes, dict[str, Any], bytes]:
    """Decode one Mongrel2 message with the plain codecs (the oracle, not m2bridge)."""
    sender, conn_id, path, rest = raw.split(b" ", 3)
    length, _, tail = rest.partition(b":")
    payload, kind = tail[: int(length)], tail[int(length) : int(length) + 1]
    if kind == b"}":
        decoded = tnetstring.loads(rest[: len(length) + 2 + int(length)])
        headers = {k.decode("latin-1"): _text(v) for k, v in decoded.items()}
    else:
        headers = json.loads(payload.decode("latin-1"), strict=False)
    body_ns = tail[int(length) + 1 :]
    blen, _, btail = body_ns.partition(b":")
    assert btail[int(blen) :] == b",", "body netstring must close the message"
    return sender, int(conn_id), path, headers, btail[: int(blen)]


def _text(value: Any) -> Any:
    if isinstance(value, list):
        return [v.decode("latin-1") for v in value]
    return value.decode("latin-1")


def expected_event(raw: bytes, kind: str) -> dict[str, Any]:
    """The event ``kind`` with the fields the message carries, bytes as latin-1 strings."""
    sender, conn_id, path, headers, body = split_message(raw)
    base = {"sender": sender.decode("latin-1"), "conn_id": conn_id}
    if kind == "Disconnect":
        return {"type": kind, "fields": base}
    if kind == "Credits":
        return {"type": kind, "fields": {**base, "credits": int(headers["DOWNLOAD_CREDITS"])}}
    if kind == "UploadChunk":
        done = "UPLOAD_STREAM_DONE" in headers
        extra = {"offset": int(headers["UPLOAD_STREAM"]), "data": body.decode("latin-1")}
        return {"type": kind, "fields": {**base, **extra, "done": done}}
    common = {**base, "path": path.decode("latin-1"), "headers": headers}
    if kind == "JSONMessage":
        data = json.loads(body.decode("latin-1"), strict=False) if body else None
        return {"type": kind, "fields": {**common, "data": data}}
    fields = {**common, "body": body.decode("latin-1")}
    if kind == "UploadStarted":
        fields["upload_path"] = headers["x-mongrel2-upload-start"]
    elif kind == "UploadDone":
        fields["upload_path"] = headers["x-mongrel2-upload-done"]
    elif kind == "WebSocketFrame":
        fields["flags"] = int(headers["FLAGS"], 16)
    return {"type": kind, "fields": fields}


def mongrel2_json(
    sender: bytes, conn_id: int, path: bytes, headers: dict[bytes, Any], body: bytes
) -> bytes:
    """Encode a message with JSON headers exactly as Mongrel2's ``protocol='json'`` does."""

    def string(raw: bytes) -> bytes:
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'

    def value(raw: Any) -> bytes:
        return b"[" + b",".join(map(string, raw)) + b"]" if isinstance(raw, list) else string(raw)

    obj = b"{" + b",".join(string(k) + b":" + value(v) for k, v in headers.items()) + b"}"
    return b"%s %d %s %d:%s,%d:%s," % (sender, conn_id, path, len(obj), obj, len(body), body)


# ----------------------------------------------------------------------------- the handler side


def reply_for(raw: bytes) -> list[bytes]:
    """What the recording handler answers, so that every client and upload runs to its end."""
    sender, conn_id, path, headers, body = split_message(raw)
    method = headers.get("METHOD")
    ids = b"%d" % conn_id
    reply = b"%s %d:%s, " % (sender, len(ids), ids)
    if (
        path == b"@*"
        or method in ("JSON", "WEBSOCKET")
        or ("x-mongrel2-upload-done" not in headers and "x-mongrel2-upload-start" in headers)
    ):
        return []
    if method == "WEBSOCKET_HANDSHAKE":
        return [
            reply + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + body + b"\r\n\r\n"
        ]
    if "UPLOAD_STREAM" in headers and "UPLOAD_STREAM_DONE" not in headers:
        if method is None:
            return []
        target = b"X " + ids
        ctl = tnetstring.dumps([b"ctl", {b"credits": 1 << 20}])
        return [b"%s %d:%s, %s" % (sender, len(target), target, ctl)]
    out = [reply + OK]
    if headers.get("VERSION") == "HTTP/1.0":
        out.append(reply)
    return out


class Recorder(threading.Thread):
    """One thread owning every zmq socket: records pushed messages, answers them."""

    def __init__(self, endpoints: dict[str, tuple[int, int]]) -> None:
        super().__init__(daemon=True)
        self.endpoints = endpoints
        self.inbox: dict[str, queue.Queue[bytes]] = {tag: queue.Queue() for tag in endpoints}
        self.stopping = threading.Event()

    def run(self) -> None:
        ctx = zmq.Context()
        poller, pubs, pulls = zmq.Poller(), {}, {}
        for tag, (send, recv) in self.endpoints.items():
            pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
            pull.linger = pub.linger = 0
            pull.connect(f"tcp://127.0.0.1:{send}")
            pub.connect(f"tcp://127.0.0.1:{recv}")
            pulls[pull], pubs[tag] = tag, pub
            poller.register(pull, zmq.POLLIN)
        while not self.stopping.is_set():
            for sock, _ in poller.poll(50):
                raw = sock.recv()
                tag = pulls[sock]
                self.inbox[tag].put(raw)
                for message in reply_for(raw):
                    pubs[tag].send(message)
        ctx.destroy(linger=0)

    def drain(self, tag: str, limit: float = 10.0) -> list[bytes]:
        got, deadline = [], time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                got.append(self.inbox[tag].get(timeout=QUIET))
            except queue.Empty:
                break
        return got


# ----------------------------------------------------------------------------- servers and clients


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    root: Path, tag: str, settings: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], int, tuple[int, int]]:
    chroot = root / tag
    for sub in ("run", "logs", "tmp"):
        (chroot / sub).mkdir(parents=True)
    port, send, recv = free_port(), free_port(), free_port()
    conf = CONF.format(
        send=send,
        recv=recv,
        uuid=UUID,
        protocol=PROTOCOLS[tag],
        tag=tag,
        port=port,
        settings=json.dumps({"server.daemonize": 0, **settings}),
    )
    (chroot / "mongrel2.conf").write_text(conf)
    env = {**os.environ, "LOGNAME": "root"}
    load = subprocess.run(
        ["m2sh", "load", "-config", "mongrel2.conf", "-db", "config.sqlite"],
        cwd=chroot,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if "[ERROR]" in load.stderr:
        raise SystemExit(f"m2sh load failed: {load.stderr}")
    proc = subprocess.Popen(
        ["mongrel2", "config.sqlite", f"capture-{tag}"],
        cwd=chroot,
        stdout=subprocess.DEVNULL,
        stderr=(chroot / "stderr.log").open("wb"),
    )
    return proc, port, (send, recv)


def run_client(port: int, scenario: Scenario) -> bytes:
    """Send the scenario's writes (pausing between them), read until idle, close."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(scenario.pause)
        for chunk in scenario.writes:
            sock.sendall(chunk)
            got += _read_some(sock)
        sock.settimeout(QUIET)
        got += _read_some(sock)
    return got


def _read_some(sock: socket.socket) -> bytes:
    got = b""
    try:
        while data := sock.recv(65536):
            got += data
    except (TimeoutError, ConnectionResetError):
        pass
    return got


# ----------------------------------------------------------------------------- writing the corpus


def write_pair(out: Path, name: str, kind: str, raws: dict[str, bytes]) -> None:
    expected = {tag: expected_event(raw, kind) for tag, raw in raws.items()}
    record = expected.get("tnet") or expected["json"]
    if "json" in expected and "tnet" in expected:
        overrides = {
            k: v for k, v in expected["json"]["fields"].items() if record["fields"][k] != v
        }
        if overrides:
            record["json_overrides"] = overrides
    for tag, raw in raws.items():
        (out / f"{name}.{tag}").write_bytes(raw)
    text = json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True)
    (out / f"{name}.expected.json").write_text(text + "\n", encoding="utf-8")


def capture_profile(out: Path, profile: str, scenarios: list[Scenario]) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"m2capture-{profile}-"))
    procs, ports, endpoints = {}, {}, {}
    try:
        for tag in PROTOCOLS:
            procs[tag], ports[tag], endpoints[tag] = start_server(root, tag, PROFILES[profile])
        recorder = Recorder(endpoints)
        recorder.start()
        for tag in PROTOCOLS:  # warm-up: readiness, slow joiner, equal conn ids on both
            run_client(
                ports[tag],
                Scenario("warmup", [b"GET /warmup HTTP/1.1\r\nHost: localhost\r\n\r\n"], []),
            )
            recorder.drain(tag)
        for scenario in scenarios:
            raws = {}
            for tag in PROTOCOLS:
                reply = run_client(ports[tag], scenario)
                raws[tag] = recorder.drain(tag)
                count = len(raws[tag])
                print(f"{scenario.name:<22} {tag}: {count} messages, client got {reply[:60]!r}")
            save_scenario(out, scenario, raws)
        recorder.stopping.set()
        recorder.join(5)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def save_scenario(out: Path, scenario: Scenario, raws: dict[str, list[bytes]]) -> None:
    kinds = [kind for _, kind in scenario.messages]
    for tag, messages in raws.items():
        got = [_kind_of(raw) for raw in messages]
        if got != kinds:
            raise SystemExit(f"{scenario.name}/{tag}: expected {kinds}, got {got}: {messages!r}")
    for index, (name, kind) in enumerate(scenario.messages):
        if name is not None:
            write_pair(out, name, kind, {tag: messages[index] for tag, messages in raws.items()})


def _kind_of(raw: bytes) -> str:
    _, _, path, headers, _ = split_message(raw)
    method = headers.get("METHOD")
    if path == b"@*":
        return "Credits" if "DOWNLOAD_CREDITS" in headers else "Disconnect"
    if method is None:
        return "UploadChunk"
    table = {
        "JSON": "JSONMessage",
        "WEBSOCKET": "WebSocketFrame",
        "WEBSOCKET_HANDSHAKE": "WebSocketHandshake",
    }
    if method in table:
        return table[method]
    for header, kind in (
        ("x-mongrel2-upload-done", "UploadDone"),
        ("x-mongrel2-upload-start", "UploadStarted"),
        ("UPLOAD_STREAM", "StreamedRequest"),
    ):
        if header in headers:
            return kind
    return "Request"


def import_shared(out: Path) -> None:
    """Copy selected tnetstring messages from the shared captures and add their JSON twins."""
    for name, kind, filename, label, occurrence in SHARED:
        lines = [
            line
            for line in (SHARED_DIR / filename).read_text().splitlines()
            if line.startswith(label)
        ]
        raw = ast.literal_eval(lines[occurrence][len(label) :].strip())
        raw = raw[0] if isinstance(raw, list) else raw
        sender, conn_id, path, _, body = split_message(raw)
        decoded = tnetstring.loads(raw.split(b" ", 3)[3])
        twin = mongrel2_json(sender, conn_id, path, decoded, body)
        write_pair(out, name, kind, {"tnet": raw, "json": twin})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--shared-only", action="store_true", help="skip the live capture")
    args = parser.parse_args()
    if not args.shared_only:
        for profile in PROFILES:
            capture_profile(args.out, profile, [s for s in SCENARIOS if s.profile == profile])
    if SHARED_DIR.is_dir():
        import_shared(args.out)


if __name__ == "__main__":
    main()

"""The real mongrel2 starts from a database written by our loader (never by m2sh) and serves a
Handler route, a Dir route and a Proxy route; the handler's endpoints and protocol come from
``find_handler``, so nothing is typed twice."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import zmq

from m2bridge.wire.encode import encode_reply
from m2bridge.wire.protocol import Request, parse_message
from mongrel2_conf import HandlerSettings, find_handler, load_config, write_config
from tests.helpers.mongrel2 import free_port, require_mongrel2, start_mongrel2, stop_process

CONF = """
app = Handler(send_spec="tcp://127.0.0.1:{send}" send_ident="conf-serves-test"
    recv_spec="tcp://127.0.0.1:{recv}" recv_ident="" protocol="tnetstring")
main = Server(uuid="conf-serves" name="main" bind_addr="127.0.0.1" port={port} chroot="./"
    access_log="/logs/access.log" error_log="/logs/error.log" pid_file="/run/mongrel2.pid"
    default_host="localhost"
    hosts=[Host(name="localhost" routes={{
        "/app/": app
        "/static/": Dir(base="static/" index_file="index.html" default_ctype="text/plain")
        "/proxy/": Proxy(addr="127.0.0.1" port={backend})
    }})])
settings = {{"server.daemonize": 0, "upload.temp_store": "/tmp/upload.XXXXXX"}}
mimetypes = {{".txt": "text/x-conf-test"}}
servers = [main]
"""


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"backend saw {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def proxy_backend(port: int) -> Iterator[None]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Backend)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def echo_handler(settings: HandlerSettings) -> Iterator[None]:
    """A minimal pyzmq handler that answers every request with the path it saw."""
    ctx = zmq.Context()
    pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
    for sock in (pull, pub):
        sock.setsockopt(zmq.LINGER, 0)
    pull.connect(settings.send_spec)
    pub.connect(settings.recv_spec)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if not pull.poll(50):
                continue
            event = parse_message(pull.recv())
            if isinstance(event, Request):
                body = f"handler saw {event.path}".encode()
                reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                pub.send(encode_reply(event.sender, [event.conn_id], reply))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        pull.close()
        pub.close()
        ctx.term()


def get(port: int, path: str) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_mongrel2_serves_a_handler_a_dir_and_a_proxy_from_our_database(tmp_path: Path):
    require_mongrel2()
    port, backend = free_port(), free_port()
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(CONF.format(send=free_port(), recv=free_port(), port=port, backend=backend))
    db = tmp_path / "config.sqlite"
    write_config(db, load_config(conf), how=str(conf))
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "hello.txt").write_text("static hello\n")
    settings = find_handler(db, "/app/")
    assert (settings.protocol, settings.chroot) == ("tnetstring", "./")

    with (
        proxy_backend(backend),
        echo_handler(settings),
        start_mongrel2(tmp_path, db, "conf-serves", port) as server,
    ):
        assert get(server.port, "/app/hello?x=1") == (200, None, b"handler saw /app/hello")
        assert get(server.port, "/static/hello.txt") == (200, "text/x-conf-test", b"static hello\n")
        assert get(server.port, "/proxy/there") == (200, None, b"backend saw /proxy/there")


def get_when_served(port: int, path: str, deadline: float) -> tuple[int, str | None, bytes]:
    """GET ``path``, retrying while the handler process is still connecting."""
    while True:
        try:
            return get(port, path)
        except (TimeoutError, ConnectionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise


def test_m2bridge_serve_reads_its_handler_from_the_same_config_file(tmp_path: Path):
    require_mongrel2()
    port = free_port()
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(CONF.format(send=free_port(), recv=free_port(), port=port, backend=free_port()))
    db = tmp_path / "config.sqlite"
    write_config(db, load_config(conf))
    log = (tmp_path / "serve.log").open("wb")
    with log, start_mongrel2(tmp_path, db, "conf-serves", port) as server:
        argv = [sys.executable, "-m", "m2bridge", "serve", "handlers.echo:app",
                "--config", str(conf), "--handler", "app"]  # fmt: skip
        worker = subprocess.Popen(argv, stdout=log, stderr=log, cwd=Path(__file__).parents[2])
        try:
            status, _, body = get_when_served(server.port, "/app/x?y=1", time.monotonic() + 15)
        finally:
            stop_process(worker)
    assert status == 200, (tmp_path / "serve.log").read_text()
    environ = json.loads(body)["environ"]
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/app/x", "y=1")

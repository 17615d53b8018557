"""The harness itself: the real mongrel2 starts from an m2sh-loaded config and answers."""

from __future__ import annotations

import http.client

import zmq

from m2bridge.wire.encode import encode_reply
from m2bridge.wire.protocol import Request, parse_message
from tests.helpers.mongrel2 import HandlerSpec, run_mongrel2


def test_mongrel2_forwards_a_request_and_delivers_the_reply(tmp_path):
    handler = HandlerSpec(route="/", protocol="json")
    with run_mongrel2(tmp_path, [handler]) as server:
        ctx = zmq.Context()
        pull = ctx.socket(zmq.PULL)
        pub = ctx.socket(zmq.XPUB)  # XPUB: Mongrel2's subscription tells us it listens
        for sock in (pull, pub):
            sock.setsockopt(zmq.LINGER, 0)
        try:
            pull.connect(handler.send_spec)
            pub.connect(handler.recv_spec)
            pub.setsockopt(zmq.RCVTIMEO, 5000)
            assert pub.recv()[:1] == b"\x01"  # subscribed: a reply can no longer be lost
            pull.setsockopt(zmq.RCVTIMEO, 5000)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", "/hello?x=1")
            event = parse_message(pull.recv())
            assert isinstance(event, Request)
            assert event.headers["QUERY"] == "x=1"
            body = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            pub.send(encode_reply(event.sender, [event.conn_id], body))
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"ok")
            conn.close()
        finally:
            pull.close()
            pub.close()
            ctx.term()

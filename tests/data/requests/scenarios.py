"""What ``capture.py`` sends to Mongrel2, and which messages it keeps under which names.

Each scenario is one client connection: its writes (sent with a pause between them) and the
exact sequence of messages Mongrel2 must push to the handler for it, as ``(file name or None,
event type)``. A run whose messages differ from the declared sequence stops with an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Mongrel2 ``settings`` per profile; each profile gets its own pair of servers.
PROFILES: dict[str, dict[str, object]] = {
    "base": {"upload.temp_store": "/tmp/upload.XXXXXX", "upload.temp_store_mode": "0644"},
    "flow": {"download.flow_control": 1},
    "stream": {"upload.stream": 1, "upload.temp_store": "/tmp/upload.XXXXXX"},
}

BYE = (None, "Disconnect")
HOST = b"Host: localhost\r\n"


@dataclass
class Scenario:
    name: str
    writes: list[bytes]
    messages: list[tuple[str | None, str]]
    profile: str = "base"
    pause: float = 0.3
    tags: list[str] = field(default_factory=list)


def get(
    target: bytes, extra: bytes = b"", version: bytes = b"HTTP/1.1", host: bytes = HOST
) -> bytes:
    return b"GET " + target + b" " + version + b"\r\n" + host + extra + b"\r\n"


def with_body(method: bytes, target: bytes, body: bytes, ctype: bytes) -> bytes:
    head = b"%s %s HTTP/1.1\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
        method,
        target,
        HOST,
        ctype,
        len(body),
    )
    return head + body


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 5.2), payload shorter than 65536 bytes."""
    mask = b"\x37\xfa\x21\x3d"
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    head += bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


WS_UPGRADE = get(
    b"/ws",
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
    b"Origin: http://localhost\r\n",
)
REPEATED = (
    b"Cookie: a=1\r\nCookie: b=2\r\nX-Foo: one\r\nx-foo: two\r\nX-FOO: three\r\n"
    b"X-Empty:\r\nX-Mixed-Case: Value With  Spaces \r\nX-Latin: caf\xe9\r\n"
    b'X-Utf8: caf\xc3\xa9\r\nX-Quote: a"b\\c\r\nX-Tab: a\tb\r\nX-Json: {"k": [1]}\r\n'
)
UPLOAD_BODY = bytes(range(256)) * 120  # 30720 bytes > limits.content_length (20480)

SCENARIOS = [
    Scenario(
        "get_query",
        [get(b"/sub/path?a=1&b=two%20x&c=%C3%A9", b"User-Agent: probe\r\nAccept: */*\r\n")],
        [("get_query", "Request"), BYE],
    ),
    Scenario("get_fragment", [get(b"/x?q=1#frag")], [("get_fragment", "Request"), BYE]),
    Scenario("get_bare_query", [get(b"/bare?")], [("get_bare_query", "Request"), BYE]),
    Scenario("get_encoded_path", [get(b"/a%20b//c%2Fd")], [("get_encoded_path", "Request"), BYE]),
    Scenario(
        "get_unicode_path",
        [get(b"/caf%C3%A9/%E2%9C%93?q=%C3%A9")],
        [("get_unicode_path", "Request"), BYE],
    ),
    # raw UTF-8 in the path: Mongrel2 answers 400 itself and the handler sees nothing
    Scenario("get_raw_utf8_path", [get(b"/caf\xc3\xa9")], []),
    Scenario("headers_repeated", [get(b"/h", REPEATED)], [("headers_repeated", "Request"), BYE]),
    Scenario(
        "headers_dup7",
        [get(b"/dup", b"".join(b"X-Dup: %d\r\n" % i for i in range(7)))],
        [("headers_dup7", "Request"), BYE],
    ),
    Scenario(
        "headers_spoofed",
        [
            get(
                b"/spoof",
                b"Path: /evil\r\nMethod: PUT\r\nX-Forwarded-For: 10.9.8.7\r\n"
                b"X-Mongrel2-Upload-Done: /etc/passwd\r\n",
            )
        ],
        [("headers_spoofed_upload_done", "UploadDone"), BYE],
    ),
    Scenario(
        "post_form",
        [
            with_body(
                b"POST", b"/form", b"a=1&b=hello+world&c=%26", b"application/x-www-form-urlencoded"
            )
        ],
        [("post_form", "Request"), BYE],
    ),
    Scenario(
        "post_json",
        [
            with_body(
                b"POST",
                b"/json",
                b'{"x": [1, 2, "\xc3\xa9"], "nul": "a\\u0000b"}',
                b"application/json",
            )
        ],
        [("post_json", "Request"), BYE],
    ),
    Scenario(
        "put_binary",
        [with_body(b"PUT", b"/bin", bytes(range(256)), b"application/octet-stream")],
        [("put_binary", "Request"), BYE],
    ),
    Scenario(
        "post_empty",
        [with_body(b"POST", b"/empty", b"", b"text/plain")],
        [("post_empty", "Request"), BYE],
    ),
    Scenario(
        "patch",
        [with_body(b"PATCH", b"/p", b"patch-body", b"text/plain")],
        [("patch", "Request"), BYE],
    ),
    Scenario("delete", [b"DELETE /d HTTP/1.1\r\n" + HOST + b"\r\n"], [("delete", "Request"), BYE]),
    Scenario(
        "options", [b"OPTIONS /o HTTP/1.1\r\n" + HOST + b"\r\n"], [("options", "Request"), BYE]
    ),
    Scenario("frob", [b"FROB /f HTTP/1.1\r\n" + HOST + b"\r\n"], [("frob_method", "Request"), BYE]),
    Scenario("head", [b"HEAD /head HTTP/1.1\r\n" + HOST + b"\r\n"], [("head", "Request"), BYE]),
    Scenario(
        "http10", [get(b"/v10", version=b"HTTP/1.0", host=b"")], [("http10_no_host", "Request")]
    ),
    Scenario(
        "http10_keepalive",
        [get(b"/v10ka", b"Connection: keep-alive\r\n", b"HTTP/1.0", b"")],
        [("http10_keepalive", "Request")],
    ),
    Scenario(
        "expect_continue",
        [
            b"POST /expect HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n",
            b"hello",
        ],
        [("expect_continue", "Request"), BYE],
    ),
    Scenario(
        "pipelined",
        [get(b"/p1") + get(b"/p2?second")],
        [("pipelined_1", "Request"), ("pipelined_2", "Request"), ("disconnect", "Disconnect")],
    ),
    Scenario(
        "upload",
        [with_body(b"POST", b"/up", UPLOAD_BODY, b"application/octet-stream")],
        [("upload_start", "UploadStarted"), ("upload_done", "UploadDone"), BYE],
    ),
    Scenario(
        "upload_chunked",
        [
            b"POST /chunked HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        ],
        [("upload_chunked_start", "UploadStarted"), ("upload_chunked_done", "UploadDone"), BYE],
    ),
    Scenario(
        "websocket",
        [
            WS_UPGRADE,
            ws_frame(1, b"hello ws"),
            ws_frame(2, bytes(range(256))),
            ws_frame(1, b"part1-", fin=False) + ws_frame(0, b"part2"),
            ws_frame(9, b"ping"),
            ws_frame(8, b"\x03\xe8bye"),
        ],
        [
            ("websocket_handshake", "WebSocketHandshake"),
            ("websocket_text", "WebSocketFrame"),
            ("websocket_binary", "WebSocketFrame"),
            ("websocket_fragmented", "WebSocketFrame"),
            ("websocket_ping", "WebSocketFrame"),
            ("websocket_close", "WebSocketFrame"),
            BYE,
        ],
    ),
    Scenario(
        "json_socket",
        [b'@chat {"type":"msg","msg":"hi"}\x00'],
        [("json_socket_msg", "JSONMessage"), BYE],
    ),
    Scenario(
        "credits",
        [get(b"/fc")],
        [("flow_control_request", "Request"), ("credits", "Credits"), BYE],
        profile="flow",
    ),
    Scenario(
        "upload_stream",
        [
            b"POST /us HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n",
            b"6\r\n world\r\n",
            b"0\r\n\r\n",
        ],
        [
            ("stream_start", "StreamedRequest"),
            ("stream_chunk_1", "UploadChunk"),
            ("stream_chunk_2", "UploadChunk"),
            ("stream_done", "UploadChunk"),
            BYE,
        ],
        profile="stream",
    ),
]

#: ``(name, event type, capture file, line label, index among lines with that label)``.
SHARED: list[tuple[str, str, str, str, int]] = [
    ("shared_get_query", "Request", "get_query.txt", "request (raw zmq message):", 0),
    (
        "shared_disconnect",
        "Disconnect",
        "get_query.txt",
        "(async message about an earlier connection):",
        0,
    ),
    ("shared_headers_dup", "Request", "headers.txt", "request (raw zmq message):", 1),
    ("shared_post_form", "Request", "post.txt", "request (raw zmq message):", 0),
    ("shared_http10", "Request", "versions.txt", "request (raw zmq message):", 0),
    ("shared_websocket_handshake", "WebSocketHandshake", "websocket.txt", "handshake message:", 0),
    ("shared_websocket_text", "WebSocketFrame", "websocket.txt", "text frame message:", 0),
    ("shared_json_socket", "JSONMessage", "chat_socket.txt", "JSON socket message:", 0),
    ("shared_post_json", "Request", "post.txt", "request (raw zmq message):", 1),
    ("shared_put_binary", "Request", "post.txt", "request (raw zmq message):", 2),
    ("shared_upload_start", "UploadStarted", "post.txt", "request n=20481 (raw zmq message):", 0),
    ("shared_upload_done", "UploadDone", "post.txt", "request n=20481 (raw zmq message):", 1),
    ("shared_credits", "Credits", "flow_control.txt", "handler got back:", 0),
    ("shared_stream_start", "StreamedRequest", "upload_stream.txt", "first message:", 0),
    ("shared_stream_chunk", "UploadChunk", "upload_stream.txt", "next message:", 0),
    ("shared_stream_done", "UploadChunk", "upload_stream.txt", "next message:", 2),
]

"""m2bridge.zmqread: the compiled reader and pyzmq's read a socket alike.

Both are run over the same sockets: None for an empty socket (and the socket still works),
frames in order whatever their size (empty, 1 MiB), the parts of a multipart message one at a
time, and the same ZMQError for a closed socket. Then what makes the compiled reader stand
down: not built, no libzmq found, more than one.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from m2bridge import zmqread

Reader = Callable[[zmq.Socket[Any]], bytes | None]
READERS: dict[str, Reader] = {"pyzmq": zmqread.read_with_pyzmq}
if zmqread.compiled is not None:
    READERS["compiled"] = zmqread.read_nowait


@pytest.fixture(params=sorted(READERS))
def read(request: pytest.FixtureRequest) -> Reader:
    reader: Reader = READERS[request.param]
    return reader


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any]]]:
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    push = context.socket(zmq.PUSH)
    pull.bind("inproc://zmqread")
    push.connect("inproc://zmqread")
    yield pull, push
    context.destroy(linger=0)


def test_an_empty_socket_reads_none_and_still_delivers_later(
    read: Reader, pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]
) -> None:
    pull, push = pair
    assert read(pull) is None
    assert read(pull) is None
    push.send(b"later")
    assert pull.poll(1000)
    assert read(pull) == b"later"


def test_frames_come_in_order_whatever_their_size(
    read: Reader, pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]
) -> None:
    pull, push = pair
    frames = [b"", b"x", bytes(range(256)) * 4096]
    for frame in frames:
        push.send(frame)
    assert pull.poll(1000)
    assert [read(pull) for _ in frames] == frames
    assert read(pull) is None


def test_a_multipart_message_is_read_one_part_at_a_time(
    read: Reader, pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]
) -> None:
    pull, push = pair
    push.send_multipart([b"", b"bye-ack"])
    assert pull.poll(1000)
    assert read(pull) == b""
    assert pull.getsockopt(zmq.RCVMORE) == 1
    assert read(pull) == b"bye-ack"


def test_a_closed_socket_raises_pyzmqs_error(
    read: Reader, pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]
) -> None:
    pull, _ = pair
    pull.close()
    with pytest.raises(zmq.ZMQError) as raised:
        read(pull)
    assert raised.value.errno == errno.ENOTSOCK


def test_the_compiled_reader_is_built_and_bound_where_a_compiler_is() -> None:
    if zmqread.compiled is None and "No module named" in zmqread.MISSING:
        return  # not built here (no compiler or Python headers): pyzmq reads, tested above
    assert zmqread.compiled is not None, zmqread.MISSING
    assert zmqread.describe().startswith("socket reads: compiled")


def test_the_libzmq_in_memory_is_found_in_the_maps(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r-xp 00000000 08:01 42    /usr/lib/libzmq-abc.so.5.2.5\n"
        "7f01-7f02 rw-p 00000000 00:00 0 \n"
        "7f02-7f03 r-xp 00000000 08:01 43    /usr/lib/libsodium.so.26\n"
        "7f03-7f04 r--p 00000000 08:01 42    /usr/lib/libzmq-abc.so.5.2.5\n"
    )
    assert zmqread.libzmq_paths(str(maps)) == {"/usr/lib/libzmq-abc.so.5.2.5"}
    assert zmqread.libzmq_paths(str(tmp_path / "missing")) == set()
    assert len(zmqread.libzmq_paths()) == 1  # this process: pyzmq's, zmq is imported


@pytest.mark.parametrize(
    ("paths", "reason"),
    [(set(), "found none"), ({"/a/libzmq.so.5", "/b/libzmq.so.5"}, "found ['/a/libzmq.so.5'")],
)
def test_the_compiled_reader_stands_down_unless_exactly_one_libzmq_is_loaded(
    monkeypatch: pytest.MonkeyPatch, paths: set[str], reason: str
) -> None:
    monkeypatch.setattr(zmqread, "libzmq_paths", lambda: set(paths))
    compiled, missing = zmqread._bind_compiled()
    if "No module named" in missing:
        return  # not built: nothing to stand down
    assert compiled is None
    assert reason in missing


def test_a_libzmq_that_is_not_loaded_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zmqread, "libzmq_paths", lambda: {"/nonexistent/libzmq.so.5"})
    compiled, missing = zmqread._bind_compiled()
    assert compiled is None
    assert "No module named" in missing or "is not loaded" in missing


def test_without_the_compiled_reader_the_log_line_says_pyzmq_and_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(zmqread, "compiled", None)
    monkeypatch.setattr(zmqread, "MISSING", "not built")
    assert zmqread.describe() == (
        "socket reads: pyzmq (zmq.Again when empty; the compiled reader: not built)"
    )

"""The pure rules of the sibling notice bus: what is shared, its framing, endpoint discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2bridge.environment import NOTICE_DIR
from m2bridge.supervisor.launcher import notice_dir
from m2bridge.wire.notice import should_share
from m2bridge.wire.protocol import Credits, Disconnect, Request, UploadStarted
from m2bridge.worker import siblings


def test_a_disconnect_is_always_shared():
    event = Disconnect(b"uuid", 7)
    assert should_share(event, has_work_here=True)
    assert should_share(event, has_work_here=False)


def test_credits_are_shared_only_when_no_request_of_the_connection_runs_here():
    event = Credits(b"uuid", 7, 65536)
    assert should_share(event, has_work_here=False)
    assert not should_share(event, has_work_here=True)


def test_an_upload_start_is_always_shared_so_a_sibling_can_serve_its_done():
    headers = {"METHOD": "POST", "content-length": "100000"}
    event = UploadStarted(b"uuid", 7, "/up", headers, b"", upload_path="/tmp/upload.AbC123")
    assert should_share(event, has_work_here=True)
    assert should_share(event, has_work_here=False)


def test_requests_are_never_shared():
    request = Request(b"uuid", 7, "/", {"METHOD": "GET"}, b"")
    assert not should_share(request, has_work_here=False)


def test_a_shared_notice_decodes_to_its_channel_and_raw_bytes():
    frame = b'uuid 7 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},'
    channels = {b"tcp://127.0.0.1:9997": "first", b"tcp://127.0.0.1:8887": "second"}
    parts = siblings.encode_shared("tcp://127.0.0.1:8887", frame)
    assert siblings.decode_shared(parts, channels) == ("second", frame)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([b"tcp://127.0.0.1:9997"], "expected 2 frames, got 1"),
        ([b"a", b"b", b"c"], "expected 2 frames, got 3"),
        ([b"tcp://10.0.0.1:1", b"x"], "unknown send_spec"),
    ],
)
def test_a_bad_shared_notice_is_a_clear_error(parts, message):
    with pytest.raises(ValueError, match=message):
        siblings.decode_shared(parts, {b"tcp://127.0.0.1:9997": 0})


def test_sibling_endpoints_are_the_other_slots_ipc_files():
    names = ["2.ipc", "1.ipc", "10.ipc", "junk", "3.ipc.tmp", "x.ipc", "-1.ipc"]
    found = siblings.sibling_endpoints(names, Path("/run/n"), slot=2)
    assert found == ["ipc:///run/n/1.ipc", "ipc:///run/n/10.ipc"]


def test_no_bus_without_a_slot_or_a_notice_dir():
    context = object()  # never touched: nothing is opened
    env = {NOTICE_DIR: "/tmp/x"}
    assert siblings.open_bus(context, None, [], print, env) is None  # type: ignore[arg-type]
    assert siblings.open_bus(context, 1, [], print, {}) is None  # type: ignore[arg-type]


def test_no_bus_when_the_endpoint_path_is_too_long(caplog):
    env = {NOTICE_DIR: "/tmp/" + "d" * 120}
    assert siblings.open_bus(object(), 1, [], print, env) is None  # type: ignore[arg-type]
    assert "too long for an ipc endpoint" in caplog.text


def test_the_supervisor_and_the_worker_agree_on_the_variable_name():
    assert NOTICE_DIR == NOTICE_DIR


def test_notice_dir_is_per_watcher_and_short():
    rundir = Path("/tmp/m2bridge-0/stack")
    assert notice_dir(rundir, "web") == rundir / "notices" / "web"
    long_a = notice_dir(rundir, "serve-tests-integration-apps-protocol-app")
    long_b = notice_dir(rundir, "serve-tests-integration-apps-protocol-app2")
    assert long_a != long_b
    assert len(long_a.name) <= 16


def test_every_process_of_a_watcher_gets_the_same_notice_dir(tmp_path):
    from m2bridge.supervisor.launcher import CommandLauncher
    from m2bridge.supervisor.stack import WatcherSpec

    spec = WatcherSpec(name="web", cmd=("prog", "--slot", "$(wid)"), numprocesses=2)
    launcher = CommandLauncher(spec, {}, tmp_path / "run" / "stats")
    first, second = launcher.command(1), launcher.command(2)
    assert first.env[NOTICE_DIR] == str(tmp_path / "run" / "notices" / "web")
    assert second.env[NOTICE_DIR] == first.env[NOTICE_DIR]
    other = CommandLauncher(WatcherSpec(name="api", cmd=("prog",)), {}, tmp_path / "run" / "stats")
    assert other.command(1).env[NOTICE_DIR] != first.env[NOTICE_DIR]

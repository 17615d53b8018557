"""Why Mongrel2 exited, in its own words: what it printed (start-up errors come before its
error log is open) and what it logged in the run that ended."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from m2bridge.supervisor import mongrel2, output
from m2bridge.supervisor.mongrel2 import describe_exit, error_log_errors, exit_reason

# Captured from Mongrel2 1.12.2 started on a port something else listens on.
PORT_CLASH = [
    "Thu, 03 Dec 2026 08:11:14 GMT [INFO] (src/config/config.c:324) Loaded 1 hosts for server 1:x",
    "Thu, 03 Dec 2026 08:11:14 GMT [ERROR] (src/task/net.c:76: errno: Address already in use) "
    "bind failed with error other than EACCESS.",
    "Thu, 03 Dec 2026 08:11:14 GMT [ERROR] (src/mongrel2.c:154: errno: None) "
    "Can't announce on TCP port 48531",
    "Thu, 03 Dec 2026 08:11:14 GMT [ERROR] (src/mongrel2.c:396: errno: None) "
    "Aborting since can't load server.",
    "Thu, 03 Dec 2026 08:11:14 GMT [ERROR] (src/mongrel2.c:434: errno: None) Exiting due to error.",
]


def test_reason_is_the_last_error_before_the_generic_trailer():
    assert exit_reason(PORT_CLASH) == "Can't announce on TCP port 48531"


def test_reason_keeps_a_real_errno_and_drops_date_and_source():
    assert exit_reason(PORT_CLASH[:2]) == (
        "bind failed with error other than EACCESS. (Address already in use)"
    )


def test_only_trailers_are_still_a_reason_and_nothing_is_said_so():
    assert exit_reason(PORT_CLASH[-1:]) == "Exiting due to error."
    assert exit_reason(PORT_CLASH[:1]) == "no error logged"
    assert exit_reason(["[ERROR] odd line"]) == "odd line"


def write_log(chroot: Path, text: str) -> None:
    (chroot / "logs").mkdir(exist_ok=True)
    (chroot / "logs" / "error.log").write_text(text, "latin-1")


def test_error_log_lines_count_from_the_offset_of_this_run(tmp_path):
    old = "a [ERROR] (f.c:1: errno: None) old run\n"
    write_log(tmp_path, old + "b [INFO] x\nc [ERROR] (f.c:2: errno: None) this run\n")
    assert error_log_errors(tmp_path, len(old)) == ["c [ERROR] (f.c:2: errno: None) this run"]
    assert len(error_log_errors(tmp_path)) == 2
    # a log smaller than the offset was rotated: all of it is this run's
    assert len(error_log_errors(tmp_path, 10**6)) == 2
    assert error_log_errors(tmp_path / "none") == []
    assert mongrel2.error_log_size(tmp_path / "none") == 0


def test_a_huge_error_log_is_read_from_its_tail_only(tmp_path):
    filler = "x [DEBUG] " + "y" * 100 + "\n"
    count = mongrel2.ERROR_LOG_TAIL // len(filler) + 10
    write_log(tmp_path, "[ERROR] too old\n" + filler * count + "z [ERROR] the end\n")
    assert error_log_errors(tmp_path) == ["z [ERROR] the end"]
    # rotated (smaller than the offset) and still over the tail limit: the cut line is dropped
    cut = "0123456789 [ERROR] " + "q" * (mongrel2.ERROR_LOG_TAIL - 30) + "\n"
    write_log(tmp_path, "[ERROR] too old\n" + cut + "z [ERROR] the end\n")
    assert error_log_errors(tmp_path, 10**9) == ["z [ERROR] the end"]


def test_describe_exit_without_lines_reads_the_whole_error_log(tmp_path):
    write_log(tmp_path, "\n".join(PORT_CLASH) + "\n")
    assert describe_exit(tmp_path, 1) == (
        "mongrel2 exited with status 1: Can't announce on TCP port 48531"
    )
    assert describe_exit(tmp_path, 1, []) == "mongrel2 exited with status 1: no error logged"


def test_relay_keeps_the_last_lines_of_the_newest_process_of_a_label(tmp_path):
    sink = open(tmp_path / "sink", "wb")  # noqa: SIM115 -- closed below
    try:
        for text in (b"first process\n", b"one\ntwo\npartial"):
            read_fd, write_fd = os.pipe()
            relay = output.LineRelay(read_fd, "m2.7 | ", sink)
            os.write(write_fd, text)
            os.close(write_fd)
            while relay.read():
                pass
        assert output.recent_lines("m2.7") == ["one", "two", "partial"]
        assert output.recent_lines("nobody.1") == []
    finally:
        sink.close()
    assert (tmp_path / "sink").read_bytes().endswith(b"m2.7 | two\nm2.7 | partial\n")


def test_relay_keeps_at_most_recent_lines(tmp_path):
    with open(tmp_path / "sink", "wb") as sink:
        read_fd, write_fd = os.pipe()
        relay = output.LineRelay(read_fd, "big.1 | ", sink)
        os.write(write_fd, b"".join(b"%d\n" % i for i in range(output.RECENT_LINES + 5)))
        os.close(write_fd)
        while relay.read():
            pass
    lines = output.recent_lines("big.1")
    assert len(lines) == output.RECENT_LINES
    assert lines[-1] == str(output.RECENT_LINES + 4)


def test_mongrel2_launcher_blames_printed_error_and_copies_logged_ones(tmp_path, caplog):
    from m2bridge.supervisor.mongrel2_watcher import Mongrel2Launcher
    from m2bridge.supervisor.stack import Mongrel2Spec, WatcherSpec

    conf = tmp_path / "x.sqlite"
    conf.touch()
    spec = WatcherSpec("web", (), working_dir=str(tmp_path), mongrel2=Mongrel2Spec(str(conf)))
    launcher = Mongrel2Launcher(spec, tmp_path)
    launcher.label = "web.1"
    write_log(tmp_path, "old [ERROR] (a.c:1: errno: None) before\n")
    launcher.error_log_offset = mongrel2.error_log_size(tmp_path)
    with open(tmp_path / "logs" / "error.log", "ab") as log:
        log.write(b"new [ERROR] (a.c:2: errno: None) Couldn't open /logs/access.log log file.\n")
    read_fd, write_fd = os.pipe()
    with open(tmp_path / "sink", "wb") as sink:
        relay = output.LineRelay(read_fd, "web.1 | ", sink)
        os.write(write_fd, "\n".join(PORT_CLASH[:3]).encode() + b"\n")
        os.close(write_fd)
        while relay.read():
            pass
    with caplog.at_level(logging.WARNING, "m2bridge.supervisor"):
        reason = launcher.describe_exit(1)
    assert reason == "mongrel2 exited with status 1: Couldn't open /logs/access.log log file."
    assert "web.1 error.log | new [ERROR]" in caplog.text
    assert "before" not in caplog.text


def test_mongrel2_launcher_says_a_signal_or_clean_exit_as_such(tmp_path):
    from m2bridge.supervisor.mongrel2_watcher import Mongrel2Launcher
    from m2bridge.supervisor.stack import Mongrel2Spec, WatcherSpec

    spec = WatcherSpec("web", (), working_dir=str(tmp_path), mongrel2=Mongrel2Spec("x.sqlite"))
    launcher = Mongrel2Launcher(spec, tmp_path)
    write_log(tmp_path, "old [ERROR] (a.c:1: errno: None) not the reason\n")
    assert launcher.describe_exit(-9) == "mongrel2 killed by SIGKILL"
    assert launcher.describe_exit(0) == "mongrel2 exited with status 0"

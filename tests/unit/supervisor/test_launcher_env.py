"""The ``M2BRIDGE_*`` variables the plain command launcher gives each process it starts."""

from __future__ import annotations

from m2bridge import environment
from m2bridge.supervisor.launcher import CommandLauncher
from m2bridge.supervisor.stack import WatcherSpec


def test_each_process_is_told_its_own_stats_file_and_slot_and_nothing_else(tmp_path):
    spec = WatcherSpec(name="web", cmd=("prog", "--slot", "$(wid)"), copy_env=False)
    launcher = CommandLauncher(spec, {}, tmp_path / "run" / "stats")
    first, second = launcher.command(1), launcher.command(2)
    told = {k: v for k, v in second.env.items() if k.startswith("M2BRIDGE_")}
    assert told == {
        environment.STATS_FILE: str(tmp_path / "run" / "stats" / "web.2.json"),
        environment.WID: "2",
    }
    assert environment.worker_slot(first.env) == 1
    assert environment.stats_file(first.env) == first.stats_file
    assert second.argv == ("prog", "--slot", "2")

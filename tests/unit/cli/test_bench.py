"""``m2bridge bench`` hands every argument, options included, to the installed benchmark."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from m2bridge.cli import bench

ROOT = Path(__file__).resolve().parents[3]


def test_bench_subcommand_passes_options_through_to_the_benchmark():
    result = subprocess.run(
        [sys.executable, "-m", "m2bridge", "bench", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout  # the benchmark's own help, not m2bridge's
    assert "--no-callgrind" in result.stdout


def test_bench_subcommand_without_the_benchmark_installed_says_so(monkeypatch, capsys):
    monkeypatch.setattr(bench, "BENCH_MAIN", "m2bridge.no_such_bench.__main__")
    assert bench.run(argparse.Namespace(args=["--quick"])) == 2
    assert "the benchmark is not installed" in capsys.readouterr().err


def test_bench_subcommand_reports_a_missing_dependency_of_the_benchmark(monkeypatch):
    def missing(name):
        raise ModuleNotFoundError("No module named 'psutil'", name="psutil")

    monkeypatch.setattr("m2bridge.cli.bench.importlib.import_module", missing)
    with pytest.raises(ModuleNotFoundError, match="psutil"):
        bench.bench_main()

"""``m2bridge bench`` hands every argument, options included, to ``python -m bench``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_bench_subcommand_outside_a_checkout_says_so(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "m2bridge", "bench", "--quick"],
        cwd=tmp_path,
        # Only the installed package: a PYTHONPATH holding the checkout would run the benchmark.
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "source checkout" in result.stderr

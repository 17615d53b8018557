"""400,000 coverage-guided inputs (atheris, in a subprocess) through ``parse_message``,
``build_environ`` and the upload-path check: nothing escapes but ``ProtocolError``.

The harness is ``tests/fuzz/fuzz_protocol.py``; libFuzzer exits non-zero with the failing input
on any other exception or crash. Bounded by ``-max_total_time`` (400,000 inputs: 12 s on the
slowest machine seen, where a million took 39 s).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

log = logging.getLogger(__name__)
HARNESS = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_protocol.py"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "requests"
RUNS = 400_000
MAX_SECONDS = 50


def test_400k_fuzzed_messages_raise_nothing_but_protocol_error(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris does not install on this platform")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    for path in [*CORPUS.glob("*.tnet"), *CORPUS.glob("*.json")]:
        shutil.copy(path, seeds / path.name)
    argv = [sys.executable, str(HARNESS), f"-atheris_runs={RUNS + 1}"]
    argv += [f"-max_total_time={MAX_SECONDS}", f"-artifact_prefix={tmp_path}/", str(seeds)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=MAX_SECONDS + 10)
    found = re.search(r"Done (\d+) (?:runs )?in (\d+) second", done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    assert found, done.stderr[-3000:]
    runs, seconds = int(found.group(1)), int(found.group(2))
    log.warning(
        "atheris: %d inputs in %d s, corpus %d files", runs, seconds, len(list(seeds.iterdir()))
    )
    assert runs >= RUNS

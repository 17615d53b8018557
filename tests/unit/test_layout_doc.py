"""docs/layout.md is generated from the tree: it must say what the tree holds today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_layout_matches_the_modules_and_their_docstrings():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "layout.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_layout_check_fails_on_a_stale_page(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import layout
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    stale = tmp_path / "layout.md"
    stale.write_text(layout.render().replace("wire/protocol.py", "protocol.py"))
    original = layout.TARGET
    layout.TARGET = stale
    try:
        assert layout.main(["layout.py", "--check"]) == 1
        assert layout.main(["layout.py"]) == 0
        assert layout.main(["layout.py", "--check"]) == 0
    finally:
        layout.TARGET = original

"""``m2bridge up --check`` imports each ``m2bridge serve`` app in a subprocess, in the
watcher's directory, and reads its ``--config``/``--handler``: each failure names the watcher.
Every stack file shipped in ``examples/`` passes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from m2bridge.cli import main
from tests.helpers.stack import write_stack

DEMO_CONF = Path(__file__).parents[3] / "mongrel2_conf" / "examples" / "demo.conf"

STACK = """
[watchers.good]
cmd = "$(python) -m m2bridge serve goodapp:app --config demo.conf --handler /"

[watchers.broken]
cmd = "$(python) -m m2bridge serve brokenapp:app"

[watchers.nohandler]
cmd = "$(python) -m m2bridge serve goodapp:app --config demo.conf --handler /nope"
"""


def test_apps_that_import_pass_and_each_failure_names_its_watcher(tmp_path, capsys):
    shutil.copy(DEMO_CONF, tmp_path / "demo.conf")
    (tmp_path / "goodapp.py").write_text("def app(environ, start_response):\n    return []\n")
    (tmp_path / "brokenapp.py").write_text("import no_such_module_m2b\n")
    stack_file = write_stack(tmp_path, STACK)
    assert main(["up", "--check", str(stack_file)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "ok: watchers.good.cmd: app goodapp:app imports" in out
    (broken,) = [line for line in out if "watchers.broken" in line and "app" in line]
    assert broken.startswith("error: watchers.broken.cmd: app brokenapp:app: ")
    assert "no_such_module_m2b" in broken
    (nohandler,) = [line for line in out if "watchers.nohandler" in line and "app" in line]
    assert nohandler.startswith("error: watchers.nohandler.cmd: app goodapp:app: ")
    assert "/nope" in nohandler
    assert not (tmp_path / "run").exists()


EXAMPLES = Path(__file__).parents[3] / "examples"


@pytest.mark.parametrize(
    "stack", ["stack.toml", "fd_stack.toml", "deployment/front.toml", "deployment/worker.toml"]
)
def test_every_example_stack_passes_up_check_as_shipped(stack, capsys):
    assert main(["up", "--check", str(EXAMPLES / stack)]) == 0, capsys.readouterr().out

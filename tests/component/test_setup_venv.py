"""scripts/setup installs into a virtual environment (.venv) exactly when the python3 on PATH
is externally managed (PEP 668, as Debian's /usr/bin/python3) or has no pip: its
``pip_usable`` test, run against stand-in python3 interpreters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SETUP = Path(__file__).parents[2] / "scripts" / "setup"

#: Makes the interpreter look like a system Python with an EXTERNALLY-MANAGED stdlib.
MANAGED_SITE = """\
import sys, sysconfig
_get_path = sysconfig.get_path
sys.base_prefix = sys.prefix
def get_path(name, *args, **kwargs):
    return {stdlib!r} if name == "stdlib" else _get_path(name, *args, **kwargs)
sysconfig.get_path = get_path
"""


def pip_usable(tmp_path: Path, managed: bool = False, pip: bool = True) -> bool:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    no_pip = "" if pip else 'case "$*" in *"-m pip"*) exit 1;; esac\n'
    python3 = bindir / "python3"
    python3.write_text(f'#!/bin/sh\n{no_pip}exec "{sys.executable}" "$@"\n')
    python3.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    if managed:
        (tmp_path / "stdlib").mkdir()
        (tmp_path / "stdlib" / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
        (tmp_path / "site").mkdir()
        site = MANAGED_SITE.format(stdlib=str(tmp_path / "stdlib"))
        (tmp_path / "site" / "sitecustomize.py").write_text(site)
        env["PYTHONPATH"] = str(tmp_path / "site")
    found = re.search(r"^pip_usable\(\) \{\n.*?^\}\n", SETUP.read_text(), re.M | re.S)
    assert found is not None, "scripts/setup defines pip_usable()"
    script = found.group(0) + "pip_usable"
    return subprocess.run(["bash", "-c", script], env=env, timeout=30, check=False).returncode == 0


def test_python_with_pip_not_externally_managed_takes_the_packages(tmp_path):
    assert pip_usable(tmp_path)


def test_externally_managed_python_gets_a_venv(tmp_path):
    assert not pip_usable(tmp_path, managed=True)


def test_python_without_pip_gets_a_venv(tmp_path):
    assert not pip_usable(tmp_path, pip=False)

"""What the run ran on: commit, CPU, load, and the versions of every server and wrk."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from typing import Any

import m2bridge

from .stacks import ROOT
from .workload import CHECKOUT

PACKAGES = ("gunicorn", "uwsgi", "granian", "gevent", "pyzmq", "psutil")


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def _git(*args: str) -> str | None:
    """Git's output in ROOT, or None when it fails (no git, or not a checkout)."""
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit() -> str:
    """The short commit of the checkout, with ``-dirty`` if tracked files changed; installed
    (no checkout), ``m2bridge-<version>``."""
    sha = _git("rev-parse", "--short", "HEAD") if CHECKOUT else None
    if not sha:
        return f"m2bridge-{m2bridge.__version__}"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}-dirty" if dirty else sha


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            found = re.search(r"^model name\s*:\s*(.+)$", info.read(), re.M)
    except OSError:
        return "unknown"
    return found.group(1).strip() if found else "unknown"


def describe() -> dict[str, Any]:
    """A JSON-ready description of the machine and the software under test."""
    wrk_line = _run(["wrk", "--version"]).splitlines()[:1]
    m2 = _run(["dpkg-query", "-W", "-f=${Version}", "mongrel2-core"])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_line[0] if wrk_line else "absent",
        "mongrel2": m2 or "unknown",
        "packages": {name: _version(name) for name in PACKAGES},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }

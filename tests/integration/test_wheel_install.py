"""From a wheel to a served request, outside the checkout: build, install, init, up, bench, quit.

The wheel is built from this checkout (``pip wheel``, in an isolated build environment) and
installed without its dependencies into a fresh virtual environment made with
``--system-site-packages``: that reuses the dependencies already installed here (pyzmq,
gevent, ...) instead of downloading them, so the test runs offline but for the build backend.
Every command then runs with the venv's ``m2bridge`` script from an empty temporary directory,
without PYTHONPATH, and the test asserts that the m2bridge it imports is the venv's copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers.http import get
from tests.helpers.mongrel2 import free_port, stop_process
from tests.helpers.waiting import wait_until
from tests.helpers.worker import REPO_ROOT

#: The quickest benchmark of one stack: one app, one cycle of 1 s after 1 s of warm-up.
BENCH_QUICK = [
    "bench", "--quick", "--stacks", "m2-zmq", "--apps", "hello", "--cycles", "1",
    "--duration", "1", "--warmup", "1", "--rounds", "1", "--workers", "1", "--idle", "0",
]  # fmt: skip


#: What the wheel is built from (a copy: pip builds in the source tree, whose build/ directory
#: could hold stale modules from an earlier build).
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE")
PACKAGES = ("m2bridge", "mongrel2_conf", "handlers", "bench")
NOT_BUILT = shutil.ignore_patterns("__pycache__", "*.so", "results")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from this checkout; its bin directory."""
    base = tmp_path_factory.mktemp("wheel")
    source, wheels = base / "source", base / "dist"
    source.mkdir()
    for name in SOURCES:
        shutil.copy2(REPO_ROOT / name, source / name)
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, source / name, ignore=NOT_BUILT)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)], base, 240)
    (wheel,) = wheels.glob("m2bridge-*.whl")
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", "venv"], base)
    python = base / "venv" / "bin" / "python"
    # --ignore-installed: the checkout's editable m2bridge is visible through the system
    # site-packages, and must not count as already installed.
    install = ["install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)]
    run([*pip, "--python", str(python), *install], base, 120)
    return base / "venv" / "bin"


def clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH, nor coverage's subprocess start-up (the venv's
    copy of m2bridge is not the checkout's, whose coverage the suite measures)."""
    return {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("COVERAGE")
    }


def run(argv: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done


def processes_of(venv_bin: Path) -> list[psutil.Process]:
    """Every live process whose command line runs from the venv."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(venv_bin) in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
    return found


@contextlib.contextmanager
def up(venv_bin: Path, site: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``m2bridge up stack.toml`` in ``site``; stopped by PID (and its children) at the end."""
    with (site / "up.log").open("wb") as out:
        proc = subprocess.Popen(
            [str(venv_bin / "m2bridge"), "up", "stack.toml"],
            cwd=site,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_process(proc, timeout=15)
        for leftover in processes_of(venv_bin):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)


def test_wheel_in_a_fresh_venv_inits_serves_benches_and_quits_from_an_empty_directory(
    venv: Path, tmp_path: Path
):
    site = tmp_path / "empty"
    site.mkdir()
    m2bridge = str(venv / "m2bridge")
    where = run([str(venv / "python"), "-c", "import m2bridge; print(m2bridge.__file__)"], site)
    assert Path(where.stdout.strip()).is_relative_to(venv.parent)  # the wheel, not the checkout

    port = free_port()
    run([m2bridge, "init", "--port", str(port)], site)
    assert {p.name for p in site.iterdir()} >= {"mongrel2.conf", "stack.toml", "app.py"}
    with up(venv, site) as supervisor:
        assert wait_until(lambda: answers(port), timeout=30), (site / "up.log").read_text()
        assert get(port) == (200, b"Hello, world!\n")
        stats = run([m2bridge, "ctl", "-s", "stack.toml", "stats"], site).stdout
        assert "hello: 2 processes" in stats
        as_json = run([m2bridge, "ctl", "-s", "stack.toml", "--json", "stats"], site).stdout
        watchers = json.loads(as_json)["watchers"]
        pids = [p["pid"] for w in watchers for p in w["processes"]]  # mongrel2's too
        assert len(pids) == 4

        bench = run([m2bridge, *BENCH_QUICK, "--out", "results"], site, timeout=120)
        (result_file,) = (site / "results").glob("*.json")
        result = json.loads(result_file.read_text())
        assert result["failures"] == [], bench.stdout
        assert {r["stack"] for r in result["records"]} == {"m2-zmq"}

        run([m2bridge, "ctl", "-s", "stack.toml", "quit"], site)
        assert supervisor.wait(30) == 0
    assert wait_until(lambda: not processes_of(venv), timeout=10), processes_of(venv)
    assert not [pid for pid in [supervisor.pid, *pids] if alive(pid)]


def alive(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


def answers(port: int) -> bool:
    with contextlib.suppress(OSError):
        return get(port, timeout=2)[0] == 200
    return False

"""``m2bridge serve --reload``: run the worker as a child; restart it when the app changes.

For development only (gunicorn's and uvicorn's ``--reload`` shape): this process loads no app
and serves nothing. It runs ``serve`` without ``--reload`` as a child process, watches the
Python files under the app's directory and the ``--pythonpath`` directories with ``watchfiles``
(an optional dependency: ``pip install 'm2bridge[reload]'``), and on a change stops the child
(SIGTERM, then SIGKILL after ``--graceful-timeout``) and starts it again. A child that exits on
its own (say, a syntax error on import) is started again at the next change. SIGTERM or SIGINT
stops the child and then this process, with the child's exit status.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from m2bridge.errors import ConfigError
from m2bridge.loader import prepare, python_path
from m2bridge.logs import setup_logging

if TYPE_CHECKING:
    from collections.abc import Iterable

    from m2bridge.config import WorkerConfig

log = logging.getLogger("m2bridge.reloader")

#: Seconds the watcher waits for a change before it checks on the child.
POLL_MS = 500
#: Seconds a child gets after SIGKILL.
KILL_WAIT = 5.0


def app_directories(spec: str, extra: Iterable[str] = ()) -> list[str]:
    """The directories to watch for ``spec`` (``module:app``): its top-level package's
    directory (a plain module: the directory holding it; not found: the current directory),
    then ``extra``; existing ones only, each once."""
    top = spec.partition(":")[0].split(".")[0]
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # as load_app does
    try:
        found = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        found = None
    if found is not None and found.submodule_search_locations:
        first = list(found.submodule_search_locations)
    elif found is not None and found.origin and os.path.isfile(found.origin):
        first = [os.path.dirname(found.origin)]
    else:
        first = [os.getcwd()]
    dirs = [os.path.abspath(d) for d in (*first, *extra)]
    return [d for i, d in enumerate(dirs) if os.path.isdir(d) and d not in dirs[:i]]


class Child:
    """The one worker process: started, stopped gracefully, started again."""

    def __init__(self, argv: list[str], pass_fds: tuple[int, ...], graceful: float) -> None:
        self.argv = argv
        self.pass_fds = pass_fds
        self.graceful = graceful
        self.process: subprocess.Popen[bytes] | None = None
        self.reported = False

    def start(self) -> None:
        """Start the worker."""
        self.process = subprocess.Popen(self.argv, pass_fds=self.pass_fds)
        self.reported = False
        log.info("started worker (pid %d)", self.process.pid)

    def stop(self) -> int:
        """SIGTERM the worker, SIGKILL it after the graceful timeout; its exit status."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.graceful + 1.0)
            except subprocess.TimeoutExpired:
                log.warning("worker %d outlived the graceful timeout: killing it", process.pid)
                process.kill()
                process.wait(KILL_WAIT)
        return process.returncode or 0

    def check(self) -> None:
        """Log once that the worker exited on its own (it starts again at the next change)."""
        process = self.process
        if process is not None and not self.reported and process.poll() is not None:
            self.reported = True
            log.warning("worker exited with status %d: waiting for a change", process.returncode)


def main(config: WorkerConfig, argv: list[str]) -> int:
    """Run ``argv`` (``serve`` without ``--reload``) and restart it on each change.

    Raises:
        ConfigError: ``watchfiles`` is not installed, or a bad log level.
    """
    try:
        import watchfiles
    except ImportError as exc:
        raise ConfigError(
            f"--reload needs watchfiles: pip install 'm2bridge[reload]' ({exc})"
        ) from exc
    setup_logging(config.log_level, config.log_format)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # we log each change ourselves
    prepare(config.chdir, config.pythonpath, config.env)
    dirs = app_directories(config.app, python_path(config.pythonpath))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _setter(stop))
    fds = () if config.fd is None else (config.fd,)
    child = Child(argv, fds, config.graceful_timeout)
    log.info("reloading on changes of Python files under %s", ", ".join(dirs))
    child.start()
    try:
        for changes in watchfiles.watch(
            *dirs,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=stop,
            rust_timeout=POLL_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if not changes:
                child.check()
                continue
            log.info("reloading: %s changed", min(path for _, path in changes))
            child.stop()
            child.start()
    finally:
        status = child.stop()
    log.info("stopped")
    return status


def _setter(event: threading.Event) -> Any:
    """A signal handler that only sets ``event``."""

    def handler(signum: int, frame: object) -> None:
        event.set()

    return handler

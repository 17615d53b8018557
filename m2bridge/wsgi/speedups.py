"""The fast path's optional compiled helpers (``_speedups``, built from ``_speedups.c``).

``compiled`` is the module, or None when it was not built (no C compiler or Python headers at
install): each helper then has a pure-Python twin (``fast_environ``, ``fast_response``) with
the same behaviour, which the equivalence tests hold both to. ``describe()`` is the worker's
log line saying which is in use.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from types import ModuleType

compiled: ModuleType | None
#: Why the compiled helpers are not in use ("" when they are).
MISSING = ""
try:
    from m2bridge.wsgi import _speedups  # type: ignore[attr-defined]
except ImportError as exc:  # not built
    compiled = None
    MISSING = str(exc)
else:
    compiled = _speedups


def describe() -> str:
    """One line for the worker's log: which fast-path helpers run, and why."""
    if compiled is not None:
        return "fast path: compiled helpers (m2bridge.wsgi._speedups)"
    return f"fast path: pure-Python helpers (the compiled ones are not built: {MISSING})"

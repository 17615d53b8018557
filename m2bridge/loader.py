"""Import a ``package.module:callable`` spec into a WSGI application.

The one app loader of the project: the ZeroMQ worker and the fd-path worker both use it.
``prepare`` applies ``serve --chdir/--pythonpath/--env`` first.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, cast

from m2bridge.errors import AppImportError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from m2bridge._types import WSGIApp


def prepare(chdir: str | None, pythonpath: str | None, env: Iterable[str]) -> None:
    """Make this process ready to import the app: change to ``chdir``, put the
    comma-separated ``pythonpath`` directories first on ``sys.path`` (relative ones taken from
    the new directory), and set each ``KEY=VALUE`` of ``env`` in ``os.environ``.

    Raises:
        AppImportError: ``chdir`` is not a directory this process can enter.
    """
    if chdir:
        try:
            os.chdir(chdir)
        except OSError as exc:
            raise AppImportError(f"--chdir {chdir}: {exc.strerror}") from exc
    sys.path[:0] = python_path(pythonpath)
    for assignment in env:
        key, _, value = assignment.partition("=")
        os.environ[key] = value


def python_path(pythonpath: str | None) -> list[str]:
    """The absolute directories of a ``--pythonpath DIR[,DIR...]`` (empty parts dropped)."""
    return [os.path.abspath(part) for part in (pythonpath or "").split(",") if part]


def load_app(spec: str) -> WSGIApp:
    """Import ``module:attr`` (``attr`` may be dotted; default ``application``/``app``).

    Raises:
        AppImportError: the module cannot be imported, the attribute is missing, or it is
            not callable. The message says which.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or (":" in spec and not attr):
        raise AppImportError(f"invalid app spec {spec!r}: expected MODULE:CALLABLE")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppImportError(f"cannot import module {module_name!r}: {exc}") from exc
        raise AppImportError(f"importing {module_name!r} failed: {exc!r}") from exc
    except Exception as exc:
        raise AppImportError(f"importing {module_name!r} raised {exc!r}") from exc
    return _resolve(module, module_name, attr)


def _resolve(module: object, module_name: str, attr: str) -> WSGIApp:
    names = [attr] if attr else ["application", "app"]
    for name in names:
        target: object = module
        try:
            for part in name.split("."):
                target = getattr(target, part)
        except AttributeError:
            continue
        if not callable(target):
            raise AppImportError(f"{module_name}:{name} is not callable")
        return cast("WSGIApp", target)
    wanted = " or ".join(repr(name) for name in names)
    raise AppImportError(f"module {module_name!r} has no attribute {wanted}")

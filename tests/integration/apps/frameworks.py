"""The four framework apps mounted side by side: ``/flask``, ``/django``, ``/bottle``, ``/falcon``.

The same app runs behind m2bridge and behind gunicorn in test_frameworks.py; each framework sees
its mount point as SCRIPT_NAME, exactly as under a real mount.
"""

from __future__ import annotations

from collections.abc import Iterable

from m2bridge._types import Environ, StartResponse, WSGIApp
from tests.integration.apps import bottle_app, django_app, falcon_app, flask_app

MOUNTS: dict[str, WSGIApp] = {
    "flask": flask_app.app,
    "django": django_app.app,
    "bottle": bottle_app.app,
    "falcon": falcon_app.app,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Hand the request to the framework named by the first path segment."""
    path = environ.get("PATH_INFO", "")
    name, _, rest = path.lstrip("/").partition("/")
    target = MOUNTS.get(name)
    if target is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []
    environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
    environ["PATH_INFO"] = "/" + rest
    return target(environ, start_response)

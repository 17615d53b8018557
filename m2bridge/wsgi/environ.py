"""Build the PEP 3333 environ of one request Mongrel2 forwarded.

Mongrel2 sends its own keys in upper case (``METHOD``, ``PATH``, ``QUERY``, ``PATTERN``...) and
every client header with its name lower-cased. This module maps both onto the CGI-style keys a
WSGI application expects. Decisions worth knowing:

- ``PATH`` is still percent-encoded: ``PATH_INFO`` is the unquoted bytes decoded as latin-1.
- ``SCRIPT_NAME`` is fixed by ``EnvironSettings.script_name``, or, with the special value
  ``"route"``, taken from Mongrel2's ``PATTERN`` when that is a plain prefix ending on a path
  segment boundary (Mongrel2's ``/tnet`` route also matches ``/tnetfoo``; that stays unsplit).
- Client header names containing ``_`` are dropped. ``X-Forwarded_For`` and ``X-Forwarded-For``
  would both become ``HTTP_X_FORWARDED_FOR``: a client could smuggle a header past a proxy that
  filters the dashed spelling (the nginx/Apache/gunicorn convention).
- ``x-mongrel2-upload-*`` headers (a client can forge them) and Mongrel2's own upper-case keys
  never become ``HTTP_*`` keys; no client header can set ``CONTENT_TYPE``/``CONTENT_LENGTH``
  other than ``content-type``/``content-length`` themselves.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, TextIO
from urllib.parse import unquote_to_bytes

from m2bridge.errors import ConfigError
from m2bridge.wire.protocol import join_header
from m2bridge.wsgi.response import FileWrapper

if TYPE_CHECKING:
    from m2bridge._types import Environ
    from m2bridge.wire.protocol import Headers, HeaderValue, Request

#: ``EnvironSettings.script_name`` value that derives SCRIPT_NAME from Mongrel2's PATTERN.
ROUTE = "route"
SERVER_SOFTWARE = "m2bridge"
#: The environ key of the gevent ``Event`` set when the client goes away (set by the worker).
DISCONNECTED_KEY = "m2bridge.disconnected"
UPLOAD_HEADER_PREFIX = "x-mongrel2-upload-"

# A client header name as Mongrel2 forwards it: a lower-case RFC 9110 token without "_".
_CLIENT_HEADER_RE = re.compile(r"[!#$%&'*+.^`|~0-9a-z-]+\Z")
_PATTERN_METACHARACTERS = frozenset("()[]{}*+?$^\\|")
_SCHEME_PORTS = {"http": "80", "https": "443"}
_SINGLE_VALUED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_SINGLE_VALUED_KEYS = frozenset(_SINGLE_VALUED.values())
# Header name -> environ key ("" = dropped): one dict lookup per header instead of a table
# check plus an lru_cache call. Cleared when full so forged names cannot grow it unbounded.
_HEADER_KEYS_MAX = 1024
_HEADER_KEYS: dict[str, str] = dict(_SINGLE_VALUED)

# Every environ starts as a copy of this: the constant values, and the key order of the
# CGI/WSGI keys (None = set per request by build_environ). Copying it and assigning is faster
# than a 22-entry dict display.
_ENVIRON_TEMPLATE: Environ = {
    "REQUEST_METHOD": None,
    "SCRIPT_NAME": None,
    "PATH_INFO": None,
    "QUERY_STRING": None,
    "SERVER_NAME": None,
    "SERVER_PORT": None,
    "SERVER_PROTOCOL": None,
    "SERVER_SOFTWARE": SERVER_SOFTWARE,
    "REMOTE_ADDR": None,
    "REQUEST_URI": None,
    "RAW_URI": None,
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": None,
    "wsgi.input": None,
    "wsgi.errors": None,
    "wsgi.multithread": None,
    "wsgi.multiprocess": None,
    "wsgi.run_once": False,
    "wsgi.input_terminated": True,
    "wsgi.file_wrapper": FileWrapper,
    "m2bridge.conn_id": None,
}


def environ_template(settings: EnvironSettings) -> Environ:
    """The keys every environ starts with, the per-worker values filled in (a fresh dict).

    Keys whose value is None are set per request.
    """
    template = _ENVIRON_TEMPLATE.copy()
    template["wsgi.multithread"] = settings.multithread
    template["wsgi.multiprocess"] = settings.multiprocess
    return template


@dataclass(frozen=True)
class EnvironSettings:
    """Per-worker values that shape every environ.

    Attributes:
        script_name: a fixed SCRIPT_NAME (``""`` or starting with ``/``), or ``"route"`` to
            derive it from Mongrel2's PATTERN.
        default_server_name: SERVER_NAME when the request has no Host header (HTTP/1.0).
        default_server_port: SERVER_PORT when the request has no Host header.
        multithread: ``wsgi.multithread``; greenlets serve concurrently inside one process.
        multiprocess: ``wsgi.multiprocess``; any number of handler processes may connect.
    """

    script_name: str = ""
    default_server_name: str = "localhost"
    default_server_port: str = "80"
    multithread: bool = True
    multiprocess: bool = True

    def __post_init__(self) -> None:
        name = self.script_name
        if name != ROUTE and name and not name.startswith("/"):
            raise ConfigError(f"script_name must be '', {ROUTE!r} or start with '/': {name!r}")
        port = self.default_server_port
        if not (port.isascii() and port.isdigit()):
            raise ConfigError(f"default_server_port must be a decimal number: {port!r}")


def build_environ(
    request: Request, body: BinaryIO, settings: EnvironSettings, errors: TextIO
) -> Environ:
    """Build the WSGI environ for ``request``.

    Args:
        request: the parsed request (its headers carry CONTENT_LENGTH; for an async upload the
            caller puts the real file size there).
        body: the stream that becomes ``wsgi.input``.
        settings: the worker's environ settings.
        errors: the stream that becomes ``wsgi.errors``.

    Returns:
        A fresh ``dict`` the application may mutate.
    """
    # Once per request, so the common case is inline: Mongrel2's values are a str (a list only
    # for a repeated key, handled by first_value and the helpers), PATH rarely needs decoding.
    headers = request.headers
    get = headers.get
    scheme = get("URL_SCHEME")
    scheme = (scheme if isinstance(scheme, str) else first_value(scheme)) or "http"
    path = request.path
    if settings.script_name or "%" in path:
        script_name, path_info = split_path(request, settings.script_name)
    else:
        script_name, path_info = "", path
    host = get("host")
    host = host if isinstance(host, str) else first_value(host)
    server_name, server_port = server_address(host, scheme, settings)
    uri = get("URI")
    uri = (uri if isinstance(uri, str) else first_value(uri)) or path
    query = get("QUERY")
    query = query if isinstance(query, str) else query_string(headers)
    addr = get("REMOTE_ADDR")
    addr = addr if addr and isinstance(addr, str) else remote_addr(headers)
    method = get("METHOD", "")
    version = get("VERSION", "HTTP/1.0")
    environ = _ENVIRON_TEMPLATE.copy()
    environ["REQUEST_METHOD"] = method if isinstance(method, str) else request.method
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = query
    environ["SERVER_NAME"] = server_name
    environ["SERVER_PORT"] = server_port
    environ["SERVER_PROTOCOL"] = version if isinstance(version, str) else request.version
    environ["REMOTE_ADDR"] = addr
    environ["REQUEST_URI"] = environ["RAW_URI"] = uri
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["wsgi.errors"] = errors
    environ["wsgi.multithread"] = settings.multithread
    environ["wsgi.multiprocess"] = settings.multiprocess
    environ["m2bridge.conn_id"] = request.conn_id
    add_client_headers(environ, headers)
    return environ


def first_value(value: HeaderValue | None) -> str | None:
    """Return a header value, or the first copy of a repeated one (None when absent)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _scalar(value: HeaderValue | None) -> str | None:
    """``first_value`` with the common case (a ``str``) checked first, inline."""
    return value if isinstance(value, str) else first_value(value)


def unquote_path(path: str) -> str:
    """Percent-decode a request path to bytes and return them as a latin-1 ``str``."""
    if "%" not in path:
        return path
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


def split_path(request: Request, script_name: str) -> tuple[str, str]:
    """Return ``(SCRIPT_NAME, PATH_INFO)``; their concatenation is always the decoded path."""
    return split_script_name(request.path, script_name, first_value(request.headers.get("PATTERN")))


def split_script_name(raw_path: str, script_name: str, pattern: str | None) -> tuple[str, str]:
    """``(SCRIPT_NAME, PATH_INFO)`` of a raw (percent-encoded) path under ``script_name``.

    ``pattern`` is Mongrel2's PATTERN, used when ``script_name`` is ``"route"``.
    """
    path = unquote_path(raw_path)
    if not script_name:
        return "", path
    if script_name == ROUTE:
        prefix = route_prefix(pattern, path)
        return prefix, path[len(prefix) :]
    prefix = script_name.rstrip("/")
    if path == prefix or path.startswith(prefix + "/"):
        return prefix, path[len(prefix) :]
    return prefix, path


def route_prefix(pattern: str | None, path: str) -> str:
    """Return the part of ``path`` that Mongrel2's route ``pattern`` stands for, or ``""``.

    Only a plain prefix (no pattern metacharacters) that ends on a segment boundary of ``path``
    counts: ``/tnet`` for ``/tnet`` and ``/tnet/x``, ``/static`` for ``/static/`` and
    ``/static/x``, nothing for ``/tnetfoo`` or ``/re/(.*\\.txt)$``.
    """
    if not pattern or not _PATTERN_METACHARACTERS.isdisjoint(pattern):
        return ""
    on_boundary = (
        path == pattern
        or path.startswith(pattern + "/")
        or (pattern.endswith("/") and path.startswith(pattern))
    )
    return pattern.rstrip("/") if on_boundary else ""


def query_string(headers: Headers) -> str:
    """Return QUERY_STRING: Mongrel2's raw QUERY, else the URI part after ``?``, else ``""``."""
    query = _scalar(headers.get("QUERY"))
    if query is not None:
        return query
    uri = first_value(headers.get("URI")) or ""
    return uri.partition("?")[2].partition("#")[0]


def server_address(host: str | None, scheme: str, settings: EnvironSettings) -> tuple[str, str]:
    """Return ``(SERVER_NAME, SERVER_PORT)`` from a Host header value.

    ``host:port`` and ``[v6addr]:port`` are split; a missing or non-numeric port gives the
    scheme's default (80/443); no Host at all gives the settings' defaults.
    """
    if not host:
        return settings.default_server_name, settings.default_server_port
    if ":" not in host and host[0] != "[":
        return host, _SCHEME_PORTS.get(scheme, "80")
    if host.startswith("["):
        address, _, rest = host.partition("]")
        name = address + "]"
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    if not (port.isascii() and port.isdigit()):
        port = _SCHEME_PORTS.get(scheme, "80")
    return name or settings.default_server_name, port


def remote_addr(headers: Headers) -> str:
    """Return REMOTE_ADDR: Mongrel2's REMOTE_ADDR, else the first x-forwarded-for entry."""
    addr = _scalar(headers.get("REMOTE_ADDR"))
    if addr:
        return addr
    forwarded = first_value(headers.get("x-forwarded-for")) or ""
    return forwarded.partition(",")[0].strip()


def add_client_headers(environ: Environ, headers: Headers) -> None:
    """Add CONTENT_TYPE, CONTENT_LENGTH and one ``HTTP_*`` key per acceptable client header."""
    keys = _HEADER_KEYS
    for name, value in headers.items():
        try:
            key = keys[name]
        except KeyError:
            key = _learn_header_key(name)
        if not key:
            continue
        if isinstance(value, str):
            environ[key] = value
        elif key in _SINGLE_VALUED_KEYS:
            if value:
                environ[key] = value[0]
        else:
            environ[key] = join_header(name, value)


def _learn_header_key(name: str) -> str:
    """Return (and cache) the environ key for header ``name``; ``""`` means dropped."""
    if len(_HEADER_KEYS) >= _HEADER_KEYS_MAX:
        _HEADER_KEYS.clear()
        _HEADER_KEYS.update(_SINGLE_VALUED)
    key = header_environ_key(name)
    _HEADER_KEYS[name] = key
    return key


def header_environ_key(name: str) -> str:
    """The environ key of a client header as Mongrel2 sends it; ``""`` when it is dropped."""
    return _SINGLE_VALUED.get(name) or environ_key(name) or ""


def environ_key(name: str) -> str | None:
    """Return the ``HTTP_*`` key for a header name as Mongrel2 sends it, or None to drop it.

    Dropped: Mongrel2's own upper-case keys, names that are not lower-case tokens, names with
    ``_`` (header smuggling, see the module docstring) and ``x-mongrel2-upload-*``.
    """
    if not _CLIENT_HEADER_RE.match(name) or name.startswith(UPLOAD_HEADER_PREFIX):
        return None
    return "HTTP_" + name.upper().replace("-", "_")

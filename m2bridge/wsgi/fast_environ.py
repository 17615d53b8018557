"""The fast path's parser: a plain request message straight into its WSGI environ, in one pass.

``FastParser.parse(frame, errors)`` returns ``(sender, conn_id, environ)`` for a complete HTTP
request with a common method and version (``protocol.COMMON_METHODS``/``COMMON_VERSIONS``),
each header given once, and nothing Mongrel2 marks as special: no notice or JSON message, no
WebSocket, no async upload, streamed body or download credits. For anything else, malformed
input included, it returns None and the worker takes the reference path
(``protocol.parse_message`` then ``environ.build_environ``), which stays the judge of what a
message means and of every error. The environ it builds equals the reference path's, key for
key (tests/unit/wsgi/test_fast_environ.py runs both over a corpus and fuzzed messages).

Why it is cheaper: the reference path decodes every header into a ``Request`` and walks the
headers again to build the environ; here each header name maps, through one dict lookup, to its
environ key (``HTTP_*``, ``CONTENT_*``, or the CGI key of one of Mongrel2's own headers) and its
value is stored there, decoded once.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, TextIO

import tnetstring
import ujson

from m2bridge.errors import ProtocolError
from m2bridge.wire.protocol import (
    COMMON_METHODS,
    COMMON_VERSIONS,
    UPLOAD_DONE,
    UPLOAD_START,
    locate_headers,
    parse_body,
)
from m2bridge.wire.sender import is_sender
from m2bridge.wsgi import speedups
from m2bridge.wsgi.environ import (
    ROUTE,
    EnvironSettings,
    environ_template,
    header_environ_key,
    server_address,
    split_script_name,
)

if TYPE_CHECKING:
    from m2bridge._types import Environ

#: ``(sender, conn_id, environ)`` of a request the fast path serves.
FastRequest = tuple[bytes, int, "Environ"]
#: ``(sender, conn_id, path, environ, body)``: a message split, its tnetstring headers stored
#: in the environ, or its JSON headers' payload (bytes) in the environ's place.
Parsed = tuple[bytes, int, str, "Environ | bytes", bytes]

#: The environ key of a header that sends its message to the reference path.
_REFERENCE = "!"
#: Mongrel2's own headers: the CGI key each one fills, or ``_REFERENCE``. Its other upper-case
#: keys (PATH, PATTERN, FRAGMENT...) never become environ keys, as in ``environ_key``.
_MONGREL2_KEYS = {
    "METHOD": "REQUEST_METHOD",
    "VERSION": "SERVER_PROTOCOL",
    "URI": "REQUEST_URI",
    "QUERY": "QUERY_STRING",
    "URL_SCHEME": "wsgi.url_scheme",
    "REMOTE_ADDR": "REMOTE_ADDR",
    "UPLOAD_STREAM": _REFERENCE,
    "UPLOAD_STREAM_DONE": _REFERENCE,
    "DOWNLOAD_CREDITS": _REFERENCE,
    UPLOAD_START: _REFERENCE,
    UPLOAD_DONE: _REFERENCE,
}
_KEYS_MAX = 2048


class EnvironKeys(dict[object, str]):
    """Header name (``bytes`` or ``str``) -> environ key: ``""`` drops the header.

    ``_REFERENCE`` (also for a name of another type) declines the message. A name seen first
    is looked up in ``__missing__`` and remembered; the map is cleared when full, so forged
    names cannot grow it without bound. ``pattern_key`` is where Mongrel2's PATTERN goes
    (``""``: dropped; the route kind of ``--script-name`` needs it).
    """

    def __init__(self, pattern_key: str = "") -> None:
        super().__init__()
        self._pattern_key = pattern_key

    def __missing__(self, name: object) -> str:
        if type(name) is bytes:
            text = name.decode("latin-1")
        elif type(name) is str:
            text = name
        else:
            return _REFERENCE
        key = _MONGREL2_KEYS.get(text)
        if key is None:
            key = self._pattern_key if text == "PATTERN" else header_environ_key(text)
        if len(self) >= _KEYS_MAX:
            self.clear()
        self[name] = key
        return key


#: Where PATTERN is kept for ``--script-name route`` (taken out before the app sees it).
_PATTERN_KEY = "m2bridge.pattern"
_KEYS = EnvironKeys()
_ROUTE_KEYS = EnvironKeys(_PATTERN_KEY)
#: Sender identities already checked against the rule (Mongrel2 uses one or a few).
_SENDERS_MAX = 64
_SENDERS: set[bytes] = set()
_STR_TYPE = frozenset({str})
_LATIN_1 = itertools.repeat("latin-1")


def _known_sender(sender: bytes) -> bool:
    if sender in _SENDERS:
        return True
    if not is_sender(sender):
        return False
    if len(_SENDERS) >= _SENDERS_MAX:
        _SENDERS.clear()
    _SENDERS.add(sender)
    return True


class FastParser:
    """Parses the plain request messages of one worker (its settings shape every environ)."""

    def __init__(self, settings: EnvironSettings, stores: HeaderStores | None = None) -> None:
        self._settings = settings
        self._script_name = settings.script_name
        self._template = environ_template(settings)
        self._keys = _ROUTE_KEYS if settings.script_name == ROUTE else _KEYS
        stores = stores or DEFAULT_STORES
        self._parse_request = stores.request
        self._store_json = stores.json

    def parse(self, frame: bytes, errors: TextIO) -> FastRequest | None:
        """Return ``(sender, conn_id, environ)`` of a plain request, else None (see module doc).

        ``errors`` becomes ``wsgi.errors``; ``wsgi.input`` reads the message's body.
        """
        parsed = self._parse_request(frame, self._template, self._keys)
        if parsed is None:
            return None
        sender, conn_id, path, headers, body = parsed
        if isinstance(headers, bytes):  # JSON headers: their payload, for ujson
            environ = self._template.copy()
            if not store_json_payload(environ, headers, self._keys, self._store_json):
                return None
        else:
            environ = headers
        if _REFERENCE in environ or not _known_sender(sender) or not self._complete(environ, path):
            return None
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.errors"] = errors
        environ["m2bridge.conn_id"] = conn_id
        return sender, conn_id, environ

    def _complete(self, environ: Environ, path: str) -> bool:
        """Derive the CGI keys from Mongrel2's headers like ``build_environ``; False to refuse."""
        if environ["REQUEST_METHOD"] not in COMMON_METHODS:
            return False
        version = environ["SERVER_PROTOCOL"]
        if version is None:
            environ["SERVER_PROTOCOL"] = "HTTP/1.0"
        elif version not in COMMON_VERSIONS:
            return False
        scheme = environ["wsgi.url_scheme"] or "http"
        environ["wsgi.url_scheme"] = scheme
        script_name = self._script_name
        if script_name == ROUTE:
            pattern = environ.pop(_PATTERN_KEY, None)
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = split_script_name(
                path, script_name, pattern
            )
        elif script_name or "%" in path:
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = split_script_name(path, script_name, "")
        else:
            environ["SCRIPT_NAME"] = ""
            environ["PATH_INFO"] = path
        environ["SERVER_NAME"], environ["SERVER_PORT"] = server_address(
            environ.get("HTTP_HOST"), scheme, self._settings
        )
        uri = environ["REQUEST_URI"]
        if environ["QUERY_STRING"] is None:
            environ["QUERY_STRING"] = (uri or "").partition("?")[2].partition("#")[0]
        environ["REQUEST_URI"] = environ["RAW_URI"] = uri or path
        if not environ["REMOTE_ADDR"]:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
            environ["REMOTE_ADDR"] = forwarded.partition(",")[0].strip()
        return True


def store_tnetstring(
    environ: Environ, rest: bytes, start: int, end: int, keys: EnvironKeys
) -> bool:
    """Store the tnetstring dict at the start of ``rest`` (payload ``rest[start:end]``) in
    ``environ``, each header under ``keys[name]``; False to decline the message."""
    try:
        headers = tnetstring.loads(rest)  # a dict: its type byte is "}"
    except Exception:  # the C codec raises ValueError and friends
        return False
    try:  # str(value, "latin-1") decodes; a list (repeated header) raises TypeError
        values = map(str, headers.values(), _LATIN_1)
        environ.update(zip(map(keys.__getitem__, headers), values, strict=True))
    except TypeError:
        return False
    environ.pop("", None)  # the dropped headers
    return True


def store_json(environ: Environ, headers: object, keys: EnvironKeys) -> bool:
    """Store ujson's reading of the JSON headers in ``environ``; False to decline."""
    if type(headers) is not dict or not {*map(type, headers.values())} <= _STR_TYPE:
        return False
    environ.update(zip(map(keys.__getitem__, headers), headers.values(), strict=True))
    environ.pop("", None)  # the dropped headers
    return True


def parse_request(frame: bytes, template: Environ, keys: EnvironKeys) -> Parsed | None:
    """Split a request message: ``(sender, conn_id, path, environ, body)``, or None to decline.

    ``environ`` is a copy of ``template`` with tnetstring headers stored; for JSON headers it
    is their payload (bytes), which ``FastParser`` parses (``store_json_payload``).
    """
    parts = frame.split(b" ", 3)
    if len(parts) != 4:
        return None
    sender, raw_id, raw_path, rest = parts
    if not (raw_id.isdigit() and len(raw_id) <= 20):
        return None
    try:
        start, end = locate_headers(rest)
        body = parse_body(rest, end + 1)
    except ProtocolError:
        return None
    kind = rest[end]
    if kind == 0x2C:  # ,: a JSON object
        headers: Environ | bytes = rest[start:end]
    elif kind == 0x7D:  # }: a tnetstring dict
        headers = template.copy()
        if not store_tnetstring(headers, rest, start, end, keys):
            return None
    else:
        return None
    return sender, int(raw_id), raw_path.decode("latin-1"), headers, body


def store_json_payload(
    environ: Environ,
    payload: bytes,
    keys: EnvironKeys,
    store: Callable[[Environ, object, EnvironKeys], bool],
) -> bool:
    """Parse JSON headers with ujson and ``store`` them; False to decline.

    Only ASCII without ``\\u`` escapes: Mongrel2 copies latin-1 bytes raw, which the reference
    path decodes as latin-1 before parsing (a UTF-8 reading would differ).
    """
    if not payload.isascii() or b"\\u" in payload:
        return False
    try:
        headers = ujson.loads(payload)
    except Exception:  # ujson.JSONDecodeError, OverflowError...
        return False
    return store(environ, headers, keys)


class HeaderStores(NamedTuple):
    """One implementation of the header loops (pure Python, or compiled)."""

    name: str
    request: Callable[[bytes, Environ, EnvironKeys], Parsed | None]
    json: Callable[[Environ, object, EnvironKeys], bool]


PURE_PYTHON = HeaderStores("pure Python", parse_request, store_json)
COMPILED = (
    None
    if speedups.compiled is None
    else HeaderStores("compiled", speedups.compiled.parse_request, speedups.compiled.store_json)
)
#: What ``FastParser`` uses unless told otherwise.
DEFAULT_STORES = COMPILED or PURE_PYTHON

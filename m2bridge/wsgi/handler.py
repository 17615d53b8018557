"""Run one WSGI application call and turn it into the raw HTTP bytes of its response.

``run_wsgi`` is a generator: the caller sends each piece it yields, in order, and reads
``response.should_close`` once it is exhausted. It never lets an application error escape:

- an error before the header block left is logged (logger ``m2bridge.wsgi.handler``) and answered
  with a short ``500`` that keeps the connection usable;
- an error after the header block left is logged and ends the response early with
  ``should_close`` set, so the client sees a truncated body rather than a wrong one;
- the result's ``close()`` is called exactly once on every path, also when the consumer stops
  early (generator ``close()``, ``GreenletExit``); such ``BaseException``\\ s propagate after
  the cleanup.

A ``list`` or ``tuple`` result is sent as one piece with a computed Content-Length; any other
iterable streams: each non-empty chunk is passed on at once (the caller merges messages).

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING

from m2bridge.wsgi.response import ResponseError

if TYPE_CHECKING:
    from m2bridge._types import Environ, WSGIApp
    from m2bridge.wsgi.response import Response

log = logging.getLogger("m2bridge.wsgi.handler")

ERROR_STATUS = "500 Internal Server Error"
ERROR_BODY = b"Internal Server Error\n"
ERROR_HEADERS = [("Content-Type", "text/plain; charset=utf-8")]


def run_wsgi(app: WSGIApp, environ: Environ, response: Response) -> Generator[bytes, None, None]:
    """Call ``app`` and yield the raw HTTP response bytes, in order, never an empty piece.

    Args:
        app: the WSGI application.
        environ: the request's environ (see ``environ.build_environ``).
        response: a fresh ``Response`` for this request; read its ``should_close``,
            ``status_code`` and ``body_bytes`` after the generator is exhausted.
    """
    try:
        result = app(environ, response.start_response)
    except Exception:
        pieces = failed_wsgi(environ, response)
    except BaseException:
        response.should_close = True
        raise
    else:
        pieces = finish_wsgi(result, environ, response)
    yield from pieces


def finish_wsgi(
    result: Iterable[bytes], environ: Environ, response: Response
) -> Generator[bytes, None, None]:
    """Yield the rest of ``run_wsgi`` once the application returned ``result``.

    The fast path calls the application itself and comes here for anything but the simplest
    result, with the ``Response`` its ``start_response`` stood for.
    """
    closable: Iterable[bytes] | None = result
    stage = "iterating the response"
    completed = False
    try:
        if type(result) is list or type(result) is tuple:  # the usual case: nothing to close
            closable = None
            try:
                tail = b"".join(result)
            except TypeError:
                raise _bad_items(result) from None
        else:
            tail = yield from _stream(result, response)
            stage = "closing the response"
            closable = None
            _close(result)
        stage = "finishing the response"
        yield from response.finish(tail)
        completed = True
    except Exception:
        _log_failure(stage, environ)
        if closable is not None:
            closing, closable = closable, None
            _close_quietly(closing)
        yield from _fail(response)
        completed = True
    finally:
        if closable is not None:
            _close_quietly(closable)
        if not completed:
            response.should_close = True


def failed_wsgi(environ: Environ, response: Response) -> Generator[bytes, None, None]:
    """What ``run_wsgi`` yields when calling the application raised: call it inside ``except``.

    The error is logged at once; the pieces are a 500 when the headers have not left, else the
    bytes already committed (and the connection closes).
    """
    _log_failure("calling the application", environ)
    return _committed(_fail(response), response)


def _log_failure(stage: str, environ: Environ) -> None:
    log.exception(
        "error while %s of %s %r",
        stage,
        environ.get("REQUEST_METHOD"),
        environ.get("PATH_INFO"),
    )


def _committed(pieces: list[bytes], response: Response) -> Generator[bytes, None, None]:
    """Yield ``pieces``; a consumer that stops early leaves the connection to be closed."""
    completed = False
    try:
        yield from pieces
        completed = True
    finally:
        if not completed:
            response.should_close = True


def _bad_items(result: list[bytes] | tuple[bytes, ...]) -> ResponseError:
    """Return the error for a list/tuple result holding something else than bytes."""
    kinds = sorted({type(item).__name__ for item in result})
    return ResponseError(f"application returned body items of type {kinds}")


def _stream(result: Iterable[bytes], response: Response) -> Generator[bytes, None, bytes]:
    """Yield the pieces of a streamed result; return the whole body of a list/tuple subclass."""
    if isinstance(result, str | bytes | bytearray):
        raise ResponseError(
            f"application returned {type(result).__name__}, not an iterable of bytes"
        )
    if isinstance(result, list | tuple):
        try:
            return b"".join(result)
        except TypeError:
            raise _bad_items(result) from None
    yield from response.drain()
    for chunk in result:
        yield from response.write(chunk)
    return b""


def _fail(response: Response) -> list[bytes]:
    """Return what still goes out after an error: a 500, or the bytes already committed."""
    if response.headers_sent:
        response.should_close = True
        return response.drain()
    response.start_response(ERROR_STATUS, list(ERROR_HEADERS), sys.exc_info())
    return response.finish(ERROR_BODY)


def _close(result: object) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _close_quietly(result: object) -> None:
    try:
        _close(result)
    except Exception:
        log.exception("close() of the application's response raised")

"""Worker settings: one frozen dataclass, the single home of every default.

CLI flags are the field names with dashes (``--graceful-timeout`` <-> ``graceful_timeout``).
Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEFAULT_SEND_SPEC = "tcp://127.0.0.1:9997"
DEFAULT_RECV_SPEC = "tcp://127.0.0.1:9996"
DEFAULT_CONCURRENCY = 1000
DEFAULT_GRACEFUL_TIMEOUT = 30.0
DEFAULT_CANCEL_GRACE = 1.0


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one worker process needs to know.

    Attributes:
        app: the ``module:callable`` spec of the WSGI application.
        send_specs: Mongrel2 ``send_spec`` endpoints (our PULL connects to each).
        recv_specs: Mongrel2 ``recv_spec`` endpoints (our PUB connects to each), same order.
        sender_id: the identity this worker uses in replies; derived from ``worker_slot`` if unset.
        concurrency: greenlets serving requests at once in one worker.
        workers: processes to run (1 runs the worker in this process).
        graceful_timeout: seconds a stopping worker waits for requests in flight.
        timeout: seconds a request may run before it is answered 504 (0: no limit).
        max_in_flight: requests in flight past which new ones get 503 (0: ``concurrency``).
        max_requests: requests after which a worker exits to be replaced (0: never).
        max_requests_jitter: random extra requests added to ``max_requests`` per worker.
        access_log: ``-`` for stderr, a file path, or None for no access log.
        log_level: standard logging level name.
        script_name: SCRIPT_NAME for every request; ``route`` takes it from Mongrel2's PATTERN.
        m2_chroot: Mongrel2's chroot directory, prefixed to async upload temp file paths.
        upload_temp_store: Mongrel2's ``upload.temp_store`` template (uploads outside its
            directory are refused); None accepts any file inside ``m2_chroot``.
        cancel_grace: seconds a request may keep running after its client went away.
        fd: serve HTTP directly on this inherited listening socket (the fd path).
        bind: serve HTTP directly on HOST:PORT (the fd path, for development).
        worker_slot: the stable slot number the supervisor gave this worker (``$(wid)``).
        stats_file: where the worker publishes its counters for the supervisor.
        validate: wrap the app in ``wsgiref.validate`` (PEP 3333 violations become 500s).
        config: a Mongrel2 config (``.conf`` or ``.sqlite``) to read the specs from.
        handler: the handler (by route path or send_ident) to serve from ``config``.
        relay: take requests from this relay (``m2bridge relay``) instead of ``send_specs``.
    """

    app: str
    send_specs: tuple[str, ...] = (DEFAULT_SEND_SPEC,)
    recv_specs: tuple[str, ...] = (DEFAULT_RECV_SPEC,)
    sender_id: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    workers: int = 1
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT
    timeout: float = 0.0
    max_in_flight: int = 0
    max_requests: int = 0
    max_requests_jitter: int = 0
    access_log: str | None = None
    log_level: str = "info"
    script_name: str = ""
    m2_chroot: str = "."
    upload_temp_store: str | None = None
    cancel_grace: float = DEFAULT_CANCEL_GRACE
    fd: int | None = None
    bind: str | None = None
    worker_slot: int | None = None
    stats_file: str | None = None
    config: str | None = None
    handler: str | None = None
    validate: bool = False
    relay: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def request_limit(max_requests: int, jitter: int, rng: random.Random | None = None) -> int:
    """Requests after which a worker drains and exits (0: never); jitter staggers restarts."""
    if max_requests <= 0:
        return 0
    return max_requests + (rng or random.Random()).randint(0, max(jitter, 0))

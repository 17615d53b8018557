"""What Mongrel2 1.12 reads from its ``setting`` table, and the checks of ``settings`` values.

Mongrel2 reads some settings with ``atoi`` and others as strings; it ignores every other key.
m2sh stores each value as TEXT, so ``1`` and ``"1"`` are the same setting.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

import re

#: Settings Mongrel2 1.12.2 reads as integers (``Setting_get_int``).
INT_SETTINGS = frozenset(
    """
    disable.access_logging download.flow_control limits.buffer_size limits.client_read_retries
    limits.connection_stack_size limits.content_length limits.dir_max_path limits.dir_send_buffer
    limits.fdtask_stack limits.handler_stack limits.handler_targets limits.header_count
    limits.host_name limits.kill_limit limits.mime_ext_len limits.min_ping limits.min_read_rate
    limits.min_write_rate limits.proxy_read_retries limits.proxy_read_retry_warn limits.tick_timer
    limits.url_path net.tcp_keepalive no_clobber_xff request.relaxed server.daemonize
    ssl.verify_optional ssl.verify_required superpoll.hot_dividend superpoll.max_fd upload.stream
    zeromq.threads
    """.split()  # noqa: SIM905 - a word list reads better than 32 quoted lines
)
#: Settings Mongrel2 1.12.2 reads as strings (``Setting_get_str``).
STR_SETTINGS = frozenset(
    {"certdir", "control_port", "ssl.ca_chain", "ssl_ciphers", "upload.temp_store",
     "upload.temp_store_mode"}
)  # fmt: skip
_INTEGER = re.compile(r"-?[0-9]+")


def is_known(key: str) -> bool:
    """True for a key Mongrel2 1.12 reads."""
    return key in INT_SETTINGS or key in STR_SETTINGS


def expected_kind(key: object, value: object) -> str:
    """What ``value`` should have been for setting ``key``; ``""`` when it is fine."""
    if not isinstance(key, str) or not key:
        return "a non-empty string key"
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "a string or an integer"
    if key in INT_SETTINGS and not _INTEGER.fullmatch(str(value)):
        return "an integer (Mongrel2 reads it with atoi)"
    if key in STR_SETTINGS and not isinstance(value, str):
        return "a string"
    return ""

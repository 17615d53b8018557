"""mongrel2_conf: Mongrel2's config language and sqlite database, without m2sh.

Parse and check an m2sh config file (never executing it), build the same objects in Python,
write the database ``m2sh load`` would write, read a database back, and find a handler's
settings. Independent of m2bridge: standard library only.

    >>> from mongrel2_conf import load_config, write_config
    >>> write_config("config.sqlite", load_config("mongrel2.conf"))  # doctest: +SKIP

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from mongrel2_conf.errors import ConfigError, Position
from mongrel2_conf.loading import load_config, parse_config
from mongrel2_conf.lookup import HandlerSettings, find_handler
from mongrel2_conf.model import Config, Dir, Filter, Handler, Host, Proxy, Server, Xrequest
from mongrel2_conf.reader import load_any, read_config
from mongrel2_conf.writer import to_rows, write_config

__all__ = [
    "Config",
    "ConfigError",
    "Dir",
    "Filter",
    "Handler",
    "HandlerSettings",
    "Host",
    "Position",
    "Proxy",
    "Server",
    "Xrequest",
    "find_handler",
    "load_any",
    "load_config",
    "parse_config",
    "read_config",
    "to_rows",
    "write_config",
]

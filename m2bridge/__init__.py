"""m2bridge: serve WSGI apps as Mongrel2 handlers, with every process under one supervisor.

Importing this package is cheap: it pulls in neither zmq nor gevent.
"""

from __future__ import annotations

from m2bridge.errors import (
    AppImportError,
    ConfigError,
    ControlError,
    M2BridgeError,
    ProtocolError,
)

__version__ = "0.1.0"

__all__ = [
    "AppImportError",
    "ConfigError",
    "ControlError",
    "M2BridgeError",
    "ProtocolError",
    "__version__",
]

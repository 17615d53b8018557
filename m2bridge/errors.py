"""The exception hierarchy: every error m2bridge raises on purpose derives from M2BridgeError."""

from __future__ import annotations


class M2BridgeError(Exception):
    """Base class of every error m2bridge raises on purpose."""


class ProtocolError(M2BridgeError):
    """A Mongrel2 message (or a reply we were asked to build) is malformed.

    Attributes:
        error_status_hint: the HTTP status a client should get when one is waiting (400 by default).
    """

    def __init__(self, msg: str, error_status_hint: int = 400) -> None:
        super().__init__(msg)
        self.error_status_hint = error_status_hint


class AppImportError(M2BridgeError):
    """A ``module:callable`` application spec cannot be imported or is not callable."""


class ConfigError(M2BridgeError):
    """A worker option, a stack file or a Mongrel2 config is invalid."""


class ControlError(M2BridgeError):
    """A control command failed, or the supervisor cannot be reached.

    Attributes:
        errno: a small stable number scripts can test (see ``m2bridge.supervisor.control``).
    """

    def __init__(self, msg: str, errno: int = 1) -> None:
        super().__init__(msg)
        self.errno = errno

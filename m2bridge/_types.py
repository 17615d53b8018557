"""Type aliases shared by the package: the WSGI callables of PEP 3333."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeAlias

Environ: TypeAlias = dict[str, Any]
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
OptExcInfo: TypeAlias = ExcInfo | tuple[None, None, None]
WriteCallable: TypeAlias = Callable[[bytes], object]
StartResponse: TypeAlias = Callable[..., WriteCallable]
WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]

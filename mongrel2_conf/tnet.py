"""Render Filter/Xrequest settings as the tnetstring m2sh stores in ``filter.settings``.

Strings, integers, lists and dicts, with dict keys in the order mongrel2's own renderer emits
them (see ``order``), so the stored text is byte for byte what ``m2sh load`` writes.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping

from mongrel2_conf.model import FilterValue
from mongrel2_conf.order import tns_dict_order, tst_order


def render_settings(settings: Mapping[str, FilterValue]) -> str:
    """The tnetstring dict of a filter's ``settings``, keys walked as m2sh walks them."""
    return _render(settings)


def _frame(payload: str, tag: str) -> str:
    return f"{len(payload.encode('utf-8'))}:{payload}{tag}"


def _render(value: FilterValue) -> str:
    if isinstance(value, str):
        return _frame(value, ",")
    if isinstance(value, bool):
        raise TypeError("filter settings take strings, integers, lists and dicts, not booleans")
    if isinstance(value, int):
        return _frame(str(value), "#")
    if isinstance(value, list | tuple):
        return _frame("".join(_render(item) for item in value), "]")
    if isinstance(value, Mapping):
        keys = tns_dict_order(tst_order(value))
        return _frame("".join(_frame(k, ",") + _render(value[k]) for k in keys), "}")
    raise TypeError(f"filter settings cannot hold {type(value).__name__} values")


def parse_settings(text: str) -> FilterValue:
    """Parse a stored ``filter.settings`` tnetstring back (strings, integers, lists, dicts).

    Raises:
        ValueError: ``text`` is not such a tnetstring.
    """
    value, rest = _parse(text.encode("utf-8"))
    if rest:
        raise ValueError(f"{len(rest)} bytes after the tnetstring")
    return value


def _parse(data: bytes) -> tuple[FilterValue, bytes]:
    size_text, colon, rest = data.partition(b":")
    if not colon or not size_text.isdigit() or len(size_text) > 9:
        raise ValueError("not a tnetstring: bad length prefix")
    size = int(size_text)
    payload, tag, rest = rest[:size], rest[size : size + 1], rest[size + 1 :]
    if len(payload) < size or not tag:
        raise ValueError("not a tnetstring: truncated")
    if tag == b",":
        return payload.decode("utf-8"), rest
    if tag == b"#":
        return int(payload), rest
    if tag == b"]":
        return _items(payload), rest
    if tag == b"}":
        items = _items(payload)
        if len(items) % 2 or not all(isinstance(k, str) for k in items[::2]):
            raise ValueError("not a tnetstring: bad dict")
        return {str(k): v for k, v in zip(items[::2], items[1::2], strict=True)}, rest
    raise ValueError(f"not a tnetstring: unsupported type {tag!r}")


def _items(payload: bytes) -> list[FilterValue]:
    items = []
    while payload:
        item, payload = _parse(payload)
        items.append(item)
    return items

"""The public ``m2bridge.websockets`` module names what apps import, and nothing stale."""

from __future__ import annotations

import m2bridge.websockets as public
from m2bridge.wire import websocket
from m2bridge.worker import wsapp


def test_every_public_name_is_the_implementation_object():
    for name in public.__all__:
        source = wsapp if hasattr(wsapp, name) and not name.startswith("CLOSE_") else websocket
        assert getattr(public, name) is getattr(source, name), name


def test_close_codes_are_rfc_6455_values():
    assert (public.CLOSE_NORMAL, public.CLOSE_GOING_AWAY, public.CLOSE_INTERNAL_ERROR) == (
        1000,
        1001,
        1011,
    )

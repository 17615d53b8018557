"""flow.CreditWindow: Mongrel2 download credits, and parsing DOWNLOAD_CREDITS."""

from __future__ import annotations

import pytest

from m2bridge.wire.flow import MAX_PIECE, CreditWindow, parse_credits


def test_take_is_bounded_by_credits_and_by_the_piece_size():
    window = CreditWindow(102400)
    assert window.take(200000) == MAX_PIECE
    assert window.take(200000) == 102400 - MAX_PIECE
    assert window.take(1) == 0


def test_grant_refills_but_never_beyond_the_window():
    window = CreditWindow(1000)
    assert window.take(800) == 800
    window.grant(300)
    assert window.available == 500
    window.grant(5000)
    assert window.available == 1000
    assert window.idle


def test_negative_grants_are_ignored():
    window = CreditWindow(10)
    window.grant(-5)
    assert window.available == 10


@pytest.mark.parametrize(
    ("value", "expected"),
    [("102400", 102400), ("0", None), ("-1", None), ("abc", None), (["1"], None),
     ("1" * 13, None), ("\uff11\uff12", None)],
)  # fmt: skip
def test_parse_credits(value, expected):
    assert parse_credits(value) == expected

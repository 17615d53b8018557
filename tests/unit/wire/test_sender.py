"""The sender identity rule: which identities Mongrel2 accepts, and a worker's default one."""

from __future__ import annotations

import pytest

from m2bridge.wire.sender import default_sender, is_sender, is_sender_text


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(b"m2bridge-host-1", True), (b"", False), (b"a b", False), (b"a_b", False)],
)
def test_is_sender_accepts_only_non_empty_letters_digits_and_dashes(
    value: bytes, accepted: bool
) -> None:
    assert is_sender(value) is accepted


def test_is_sender_text_refuses_non_ascii() -> None:
    assert is_sender_text("worker-7")
    assert not is_sender_text("wörker")


def test_default_sender_uses_the_slot_when_there_is_one() -> None:
    assert default_sender("web1", 3, 4242) == "m2bridge-web1-3"


def test_default_sender_uses_the_pid_without_a_slot() -> None:
    assert default_sender("web1", None, 4242) == "m2bridge-web1-4242"


def test_default_sender_turns_each_run_of_other_characters_into_one_dash() -> None:
    name = default_sender("host.example_é.com", 0, 1)
    assert name == "m2bridge-host-example-com-0"
    assert is_sender_text(name)

"""mongrel2_conf.listeners: which servers cannot be bound together (one stack, one address)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mongrel2_conf.listeners import clashes, same_listener


@dataclass(frozen=True)
class Row:
    name: str
    bind_addr: str
    port: int


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("127.0.0.1", 80), ("127.0.0.1", 80), True),
        (("0.0.0.0", 80), ("127.0.0.1", 80), True),
        (("127.0.0.1", 80), ("::", 80), True),
        (("", 80), ("10.0.0.1", 80), True),
        (("*", 80), ("10.0.0.1", 80), True),
        (("127.0.0.1", 80), ("127.0.0.2", 80), False),
        (("0.0.0.0", 80), ("0.0.0.0", 81), False),
    ],
)
def test_one_port_with_one_address_or_a_wildcard_is_one_listener(a, b, same):
    assert same_listener(Row("a", *a), Row("b", *b)) is same
    assert same_listener(Row("b", *b), Row("a", *a)) is same


def test_each_clash_names_the_first_server_it_collides_with():
    web = Row("web", "0.0.0.0", 6767)
    local = Row("local", "127.0.0.1", 6767)
    other = Row("other", "127.0.0.2", 6767)
    admin = Row("admin", "0.0.0.0", 6768)
    assert clashes([web, local, other, admin]) == [(web, local), (web, other)]
    assert clashes([local, other, admin]) == []

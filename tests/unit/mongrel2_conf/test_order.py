"""m2sh's walk orders, checked against what the real m2sh 1.12.2 wrote (captured once)."""

from __future__ import annotations

import pytest

from mongrel2_conf.model import FilterValue
from mongrel2_conf.order import fnv1a, tns_dict_order, tst_order
from mongrel2_conf.tnet import parse_settings, render_settings


def test_routes_come_out_in_m2sh_breadth_first_tree_order():
    # Route ids m2sh gave to these paths, inserted in this order.
    written = ["/a", "/b", "/c", "/static/", "/p/", "/zz", "/m", "/e"]
    assert tst_order(written) == ["/a", "/b", "/c", "/m", "/p/", "/zz", "/e", "/static/"]


def test_settings_come_out_in_m2sh_order():
    written = ["zeromq.threads", "upload.temp_store", "b.x", "a"]
    assert tst_order(written) == ["a", "b.x", "zeromq.threads", "upload.temp_store"]


def test_tree_order_depends_on_insertion_order():
    assert tst_order(["b", "a", "c"]) == ["b", "a", "c"]
    assert tst_order(["a", "b", "c"]) == ["a", "b", "c"]
    assert tst_order(["c", "b", "a"]) == ["c", "b", "a"]
    assert tst_order(["ab", "a"]) == ["a", "ab"]


def test_non_ascii_keys_compare_as_signed_chars_like_m2sh():
    # UTF-8 bytes >= 0x80 are negative as C chars: "/b" goes to the high side of "/é"'s
    # first byte and is visited after it (unsigned bytes would give ["/b", "/é", "/a"]).
    assert tst_order(["/é", "/b", "/a"]) == ["/é", "/b", "/a"]


def test_fnv1a_matches_the_reference_values():
    assert fnv1a("") == 0x811C9DC5
    assert fnv1a("a") == 0xE40C292C
    assert fnv1a("foobar") == 0xBF9CF968


def test_filter_settings_render_byte_for_byte_as_m2sh_stored_them():
    settings: dict[str, FilterValue] = {
        "extensions": ["*.html", "*.txt"],
        "min_size": 1000,
        "z": {"a": 1, "b": "x"},
        "r": 7,
    }
    stored_by_m2sh = (
        "85:1:z,16:1:a,1:1#1:b,1:x,}8:min_size,4:1000#1:r,1:7#10:extensions,17:6:*.html,5:*.txt,]}"
    )
    assert render_settings(settings) == stored_by_m2sh
    assert render_settings({"l": ["a", 1, ["b"], {"k": "v"}], "d": {}}) == (
        "41:1:d,0:}1:l,26:1:a,1:1#4:1:b,]8:1:k,1:v,}]}"
    )


def test_dict_order_is_reversed_hash_chain_order():
    # chains: extensions 11, r 21, min_size 41, z 45 -> scanned up, rendered backwards
    assert tns_dict_order(["z", "r", "min_size", "extensions"]) == [
        "z",
        "min_size",
        "r",
        "extensions",
    ]


def test_rendered_settings_parse_back_to_the_same_values():
    settings: dict[str, FilterValue] = {
        "s": "ü",
        "n": 12345678901,
        "l": [[], {}],
        "d": {"x": ["y"]},
    }
    assert parse_settings(render_settings(settings)) == settings


def test_a_dict_of_127_keys_is_ordered_but_128_would_grow_m2shs_table():
    keys = [f"k{n}" for n in range(128)]
    assert sorted(tns_dict_order(keys[:127])) == sorted(keys[:127])
    with pytest.raises(ValueError, match="a filter settings hash may hold at most 127 keys"):
        render_settings(dict.fromkeys(keys, 1))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "filter settings take strings, integers, lists and dicts, not booleans"),
        (1.5, "filter settings cannot hold float values"),
        (None, "filter settings cannot hold NoneType values"),
    ],
)
def test_settings_of_other_types_cannot_be_rendered(value, message):
    with pytest.raises(TypeError, match=message):
        render_settings({"x": value})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0:,x", "1 bytes after the tnetstring"),
        ("", "not a tnetstring: bad length prefix"),
        ("x:", "not a tnetstring: bad length prefix"),
        ("1234567890:", "not a tnetstring: bad length prefix"),
        ("5:ab,", "not a tnetstring: truncated"),
        ("2:ab", "not a tnetstring: truncated"),
        ("4:1:a,}", "not a tnetstring: bad dict"),
        ("8:1:1#1:a,}", "not a tnetstring: bad dict"),
        ("1:x!", r"not a tnetstring: unsupported type b'!'"),
        ("4:true!", r"not a tnetstring: unsupported type b'!'"),
    ],
)
def test_unreadable_settings_text_is_a_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_settings(text)

"""Mongrel2's control-port bytes: requests encode as the binary expects, captured replies parse
into tables, malformed and error replies are ValueErrors, endpoints resolve against the chroot."""

from __future__ import annotations

import contextlib
import re

import pytest
import tnetstring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from m2bridge.supervisor.mongrel2_status import (
    StatusTable,
    control_endpoint,
    encode_status_request,
    open_connections,
    parse_status_reply,
    task_count,
)

# Captured from the real mongrel2 1.12.2 (Debian mongrel2-core) on its control port.
NET_EMPTY = (
    b"110:7:headers,86:2:id,2:fd,4:type,9:last_ping,9:last_read,10:last_write,10:bytes_read,"
    b"13:bytes_written,]4:rows,0:]}"
)
NET_THREE = (
    b"226:7:headers,86:2:id,2:fd,4:type,9:last_ping,9:last_read,10:last_write,10:bytes_read,"
    b"13:bytes_written,]4:rows,114:34:2:-1#2:21#1:0#1:0#1:0#1:0#1:0#1:0#]34:2:-1#2:22#1:0#1:0#"
    b"1:0#1:0#1:0#1:0#]34:2:-1#2:23#1:0#1:0#1:0#1:0#1:0#1:0#]]}"
)
TASKS = (
    b"317:7:headers,38:2:id,6:system,4:name,5:state,6:status,]4:rows,253:38:1:1#5:false!6:SERVER,"
    b"7:read fd,4:idle,]51:1:2#5:false!12:Handler_task,12:read handler,4:idle,]48:1:3#5:false!"
    b"7:control,12:read handler,7:running,]36:1:4#4:true!6:fdtask,5:yield,5:ready,]31:1:5#5:false!"
    b"6:ticker,0:,4:idle,]25:1:6#5:false!0:,0:,4:idle,]]}"
)
NOT_FOUND = b"74:4:code,18:CALLBACK_NOT_FOUND,5:error,33:Callback requested was not found.,}"
NO_WHAT = b"51:5:error,39:Expected argument what=['net'|'tasks'].,}"
INVALID_DATA = (
    b"97:4:code,12:INVALID_DATA,5:error,62:Invalid data, expecting a list with a string and a "
    b"hash in it.,}"
)
NET_HEADERS = (
    "id",
    "fd",
    "type",
    "last_ping",
    "last_read",
    "last_write",
    "bytes_read",
    "bytes_written",
)


def reply(value: object) -> bytes:
    encoded: bytes = tnetstring.dumps(value)
    return encoded


# -- requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["net", "tasks"])
def test_status_request_is_the_list_mongrel2_expects(what):
    data = encode_status_request(what)
    assert tnetstring.loads(data) == [b"status", {b"what": what.encode()}]


def test_status_request_bytes_are_exact():
    assert encode_status_request("net") == b"26:6:status,13:4:what,3:net,}]"


@pytest.mark.parametrize("what", ["", "NET", "bogus"])
def test_status_request_refuses_what_mongrel2_does_not_know(what):
    with pytest.raises(ValueError, match=r"only knows net or tasks"):
        encode_status_request(what)


# -- replies -------------------------------------------------------------------------------------


def test_empty_net_table_parses_with_no_rows():
    table = parse_status_reply(NET_EMPTY)
    assert table == StatusTable(NET_HEADERS, ())
    assert open_connections(table) == 0


def test_net_table_has_one_row_per_connection():
    table = parse_status_reply(NET_THREE)
    assert table.headers == NET_HEADERS
    assert table.rows[0] == (-1, 21, 0, 0, 0, 0, 0, 0)
    assert open_connections(table) == 3
    assert [record["fd"] for record in table.records()] == [21, 22, 23]


def test_tasks_table_decodes_names_and_flags():
    table = parse_status_reply(TASKS)
    assert table.headers == ("id", "system", "name", "state", "status")
    assert table.rows[0] == (1, False, "SERVER", "read fd", "idle")
    assert table.rows[3] == (4, True, "fdtask", "yield", "ready")
    assert task_count(table) == 6
    assert table.records()[2] == {
        "id": 3,
        "system": False,
        "name": "control",
        "state": "read handler",
        "status": "running",
    }


def test_cells_may_be_null_float_or_non_utf8():
    table = parse_status_reply(
        reply({b"headers": [b"a", b"b", b"c"], b"rows": [[None, 1.5, b"\xff"]]})
    )
    assert table.rows == ((None, 1.5, "\ufffd"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (NOT_FOUND, r"^mongrel2 refused the request: CALLBACK_NOT_FOUND: Callback requested was"),
        (NO_WHAT, r"^mongrel2 refused the request: Expected argument what=\['net'\|'tasks'\]\.$"),
        (INVALID_DATA, r"refused the request: INVALID_DATA: Invalid data, expecting a list"),
        (reply({b"code": b"X"}), r"refused the request: X$"),
        (reply({b"error": b""}), r"refused the request: no reason given$"),
        (reply({b"code": 7, b"headers": [], b"rows": []}), r"refused the request: 7$"),
    ],
)
def test_error_reply_is_a_value_error_with_mongrels_words(data, message):
    with pytest.raises(ValueError, match=message):
        parse_status_reply(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"not a tnetstring \(.*\): b''$"),
        (b"garbage", r"not a tnetstring"),
        (b"6:0:]0:~}", r"not a tnetstring \(unhashable"),  # the C decoder's TypeError
        (b"x" * 100, r"not a tnetstring .*xxx'\.\.\.$"),
        (NET_EMPTY + b"0:~", r"3 bytes after its tnetstring"),
        (reply([b"status"]), r"is a list, not a table"),
        (reply(b"ok"), r"is a bytes, not a table"),
        (reply({}), r"has no headers and rows"),
        (reply({b"headers": [b"id"]}), r"has no headers and rows"),
        (reply({b"headers": b"id", b"rows": []}), r"has no headers and rows"),
        (reply({b"headers": [1], b"rows": []}), r"has a int header, not a string"),
        (reply({b"headers": [b"id"], b"rows": [7]}), r"row 0 is not a list of 1 cells: 7"),
        (reply({b"headers": [b"id"], b"rows": [[1], [1, 2]]}), r"row 1 is not a list of 1 cells"),
        (reply({b"headers": [b"id"], b"rows": [[[1]]]}), r"row 0 has a list in 'id'"),
        (reply({b"headers": [b"id"], b"rows": [[{}]]}), r"row 0 has a dict in 'id'"),
    ],
)
def test_malformed_reply_is_a_value_error_that_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        parse_status_reply(data)


def test_deeply_nested_reply_is_a_value_error_not_a_recursion_error():
    data = b"0:]"
    for _ in range(5000):
        data = b"%d:%s]" % (len(data), data)
    with pytest.raises(ValueError, match="not a tnetstring"):
        parse_status_reply(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_parse_never_raises_anything_but_value_error_on_arbitrary_bytes(data):
    with contextlib.suppress(ValueError):
        parse_status_reply(data)


TNET_ATOM = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.binary(max_size=8))
TNET_VALUE = st.recursive(
    TNET_ATOM,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        TNET_VALUE,
        st.fixed_dictionaries({b"headers": TNET_VALUE, b"rows": TNET_VALUE}),
        st.fixed_dictionaries(
            {b"headers": st.lists(st.binary(max_size=4), max_size=3), b"rows": st.lists(TNET_VALUE)}
        ),
    )
)
def test_parse_of_well_formed_tnetstrings_is_a_table_or_value_error(value):
    try:
        table = parse_status_reply(reply(value))
    except ValueError:
        return
    assert all(len(row) == len(table.headers) for row in table.rows)


# -- counting ------------------------------------------------------------------------------------


def test_counting_refuses_the_other_table():
    net, tasks = parse_status_reply(NET_THREE), parse_status_reply(TASKS)
    with pytest.raises(ValueError, match=r"not a status what=net table \(columns: id, system"):
        open_connections(tasks)
    with pytest.raises(ValueError, match=r"not a status what=tasks table \(columns: id, fd, type"):
        task_count(net)
    with pytest.raises(ValueError, match=r"\(columns: none\)"):
        task_count(StatusTable((), ()))


# -- the endpoint --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("control_port", "chroot", "as_root", "expected"),
    [
        ("", "/srv/m2", True, "ipc:///srv/m2/run/control"),
        ("", "/srv/m2/", False, "ipc:///srv/m2/run/control"),
        ("  ", "/srv/m2", True, "ipc:///srv/m2/run/control"),
        ("ipc://run/control", "/srv/m2", True, "ipc:///srv/m2/run/control"),
        ("ipc://run/control", "/srv/m2", False, "ipc:///srv/m2/run/control"),
        ("ipc://./run//ctl", "/srv/m2", True, "ipc:///srv/m2/run/ctl"),
        ("ipc://../../etc/ctl", "/srv/m2", True, "ipc:///srv/m2/etc/ctl"),  # cannot leave
        ("ipc:///run/control", "/srv/m2", True, "ipc:///srv/m2/run/control"),
        ("ipc:///run/control", "/", True, "ipc:///run/control"),
        ("ipc:///run/control", "/srv/m2", False, "ipc:///run/control"),
        ("ipc:///run/control", "relative", False, "ipc:///run/control"),
        ("tcp://127.0.0.1:9999", "/srv/m2", True, "tcp://127.0.0.1:9999"),
        ("tcp://*:9999", "/srv/m2", True, "tcp://127.0.0.1:9999"),
        ("tcp://[::1]:9999", "/srv/m2", False, "tcp://[::1]:9999"),
    ],
)
def test_control_endpoint_resolves_where_the_supervisor_connects(
    control_port, chroot, as_root, expected
):
    assert control_endpoint(control_port, chroot, as_root) == expected


@pytest.mark.parametrize("control_port", ["ipc://", "tcp://", "inproc://ctl", "run/control", "x"])
def test_control_endpoint_refuses_other_values_naming_them(control_port):
    with pytest.raises(ValueError, match=re.escape(f"control_port {control_port!r} is not an ipc")):
        control_endpoint(control_port, "/srv/m2", True)


def test_control_endpoint_needs_an_absolute_chroot_for_an_ipc_path_inside_it():
    with pytest.raises(ValueError, match=r"chroot 'srv' must be an absolute path"):
        control_endpoint("", "srv", True)

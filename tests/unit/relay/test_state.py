"""relay_state: which worker gets each message (credits, affinity, notices, bye)."""

from __future__ import annotations

import pytest

from m2bridge.relay.state import MAX_GRANT, MAX_UNSTARTED, Lost, RelayState


def request(conn_id: int, path: bytes = b"/") -> bytes:
    return b"uuid %d %s 2:{},0:," % (conn_id, path)


def disconnect(conn_id: int) -> bytes:
    return b'uuid %d @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},' % conn_id


def credits(conn_id: int) -> bytes:
    return b'uuid %d @* 49:{"METHOD":"JSON","DOWNLOAD_CREDITS":"4096"},18:{"type":"credits"},' % (
        conn_id
    )


def start(state: RelayState, peer: bytes, read: int, finished=()) -> bool:
    """``peer``'s ``start`` for the ``count`` it was sent (any generation for an unknown one)."""
    known = state.peers.get(peer)
    return state.start(peer, 1 if known is None else known.generation, read, finished)


def routed(state: RelayState, source: int, frame: bytes) -> list[bytes]:
    """Where ``state`` sends ``frame`` right now (it must not be held)."""
    targets = state.route(source, frame)
    assert targets is not None, "held"
    return targets


def test_a_request_is_held_until_a_worker_grants_credit():
    state = RelayState(1)
    assert state.route(0, request(1)) is None
    assert state.ready(b"a", 0, 2)
    assert state.route(0, request(1)) == [b"a"]


def test_each_message_costs_one_credit_and_no_credit_holds_new_connections():
    state = RelayState(1)
    state.ready(b"a", 0, 2)
    assert state.route(0, request(1)) == [b"a"]
    assert state.route(0, request(2)) == [b"a"]
    assert state.peers[b"a"].credit == 0
    assert state.route(0, request(3)) is None


def test_new_connections_go_to_the_worker_with_most_credit():
    state = RelayState(1)
    state.ready(b"a", 0, 1)
    state.ready(b"b", 0, 5)
    assert state.route(0, request(1)) == [b"b"]


def test_equal_credit_is_shared_in_turn():
    state = RelayState(1)
    state.ready(b"a", 0, 100)
    state.ready(b"b", 0, 100)
    targets = [routed(state, 0, request(n))[0] for n in range(1, 41)]
    assert targets.count(b"a") == targets.count(b"b") == 20


def test_requests_of_one_connection_stay_on_its_worker_even_without_credit():
    state = RelayState(1)
    state.ready(b"a", 0, 1)
    assert state.route(0, request(7)) == [b"a"]
    state.ready(b"b", 0, 50)
    assert state.route(0, request(7)) == [b"a"]  # pipelined: same worker, in order
    assert state.route(0, request(8)) == [b"b"]


def test_credits_notice_goes_to_the_holder_only():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    state.ready(b"b", 0, 10)
    holder = state.route(0, request(3))
    assert state.route(0, credits(3)) == holder


def test_disconnect_goes_to_every_live_worker_that_served_the_connection_then_is_forgotten():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    state.route(0, request(3))
    state.remove(b"a")  # a drained; the connection's next request moves to b
    state.ready(b"b", 0, 10)
    state.ready(b"c", 0, 1)
    assert state.route(0, request(3)) == [b"b"]
    assert state.route(0, disconnect(3)) == [b"b"]
    assert state.holders(0, b"3") == []


def test_notice_of_an_unknown_connection_goes_to_every_worker_of_its_source():
    state = RelayState(2)
    state.ready(b"a", 0, 1)
    state.ready(b"b", 0, 1)
    state.ready(b"c", 1, 1)
    assert sorted(routed(state, 0, disconnect(99))) == [b"a", b"b"]


def test_notice_with_no_worker_at_all_goes_nowhere():
    assert RelayState(1).route(0, disconnect(1)) == []


def test_a_removed_worker_gets_nothing_more_and_its_connections_move():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    state.route(0, request(1))
    assert state.remove(b"a")
    assert not state.remove(b"a")
    assert state.route(0, request(1)) is None
    state.ready(b"b", 0, 1)
    assert state.route(0, request(1)) == [b"b"]


def test_sources_are_routed_apart():
    state = RelayState(2)
    state.ready(b"a", 0, 5)
    assert state.route(1, request(1)) is None
    state.ready(b"b", 1, 5)
    assert state.route(1, request(1)) == [b"b"]
    assert state.route(0, request(1)) == [b"a"]  # same id, other server: other connection


@pytest.mark.parametrize(
    ("source", "grant"), [(-1, 1), (2, 1), (0, -1), (0, MAX_GRANT + 1)], ids=str
)
def test_bad_grants_are_refused(source, grant):
    state = RelayState(2)
    assert not state.ready(b"a", source, grant)
    assert b"a" not in state.peers


def test_a_worker_cannot_switch_source():
    state = RelayState(2)
    state.ready(b"a", 0, 1)
    assert not state.ready(b"a", 1, 1)


def test_malformed_message_goes_to_a_worker_with_credit():
    state = RelayState(1)
    assert state.route(0, b"garbage") is None
    state.ready(b"a", 0, 1)
    assert state.route(0, b"garbage") == [b"a"]


def test_remembered_connections_are_bounded():
    state = RelayState(1, max_connections=10)
    state.ready(b"a", 0, 100)
    for conn_id in range(50):
        state.route(0, request(conn_id))
    assert state.holders(0, b"49") == [b"a"]
    assert state.holders(0, b"0") == []


def test_no_sources_is_an_error():
    with pytest.raises(ValueError, match="at least one source"):
        RelayState(0)


def test_idle_refresh_registers_a_worker_a_restarted_relay_never_saw():
    state = RelayState(1)
    assert state.refresh(b"a", 0, 32)
    assert state.peers[b"a"].credit == 32


def test_idle_refresh_raises_credit_to_the_window_but_never_lowers_it():
    state = RelayState(1)
    state.ready(b"a", 0, 40)
    assert state.refresh(b"a", 0, 32)
    assert state.peers[b"a"].credit == 40
    for conn_id in range(20):
        state.route(0, request(conn_id))
    assert state.refresh(b"a", 0, 32)
    assert state.peers[b"a"].credit == 32


def test_idle_refresh_with_a_bad_grant_is_refused():
    assert not RelayState(1).refresh(b"a", 0, MAX_GRANT + 1)


def test_sources_is_the_number_the_relay_was_built_with():
    assert RelayState(3).sources == 3


def test_a_second_grant_of_the_same_source_adds_to_the_credit():
    state = RelayState(1)
    assert state.ready(b"a", 0, 2)
    assert state.ready(b"a", 0, 3)
    assert state.peers[b"a"].credit == 5


def test_a_connection_back_on_an_earlier_worker_makes_it_the_latest_holder_once():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    assert state.route(0, request(5)) == [b"a"]
    state.remove(b"a")
    state.ready(b"b", 0, 10)
    assert state.route(0, request(5)) == [b"b"]
    state.ready(b"a", 0, 10)  # a came back; b drains
    state.remove(b"b")
    assert state.route(0, request(5)) == [b"a"]
    state.ready(b"b", 0, 10)
    assert state.holders(0, b"5") == [b"b", b"a"]  # a moved to the end, not listed twice


def test_a_vanished_worker_gives_the_connections_it_held_last_to_close():
    state = RelayState(2)
    state.ready(b"a", 0, 10)
    state.ready(b"b", 0, 10)
    state.ready(b"c", 1, 10)
    for conn_id in (1, 2, 3, 4):
        routed(state, 0, request(conn_id))
    routed(state, 1, b"other 7 / 2:{},0:,")
    on_a = [c for c in (1, 2, 3, 4) if state.holders(0, b"%d" % c) == [b"a"]]
    assert on_a  # ties are taken in turn: both workers hold some
    assert state.vanish(b"a") == Lost(close={0: (b"uuid", on_a)})
    assert b"a" not in state.peers
    assert all(state.holders(0, b"%d" % c) == [] for c in on_a)
    assert state.vanish(b"a") == Lost()  # unknown now: nothing more to close
    assert state.vanish(b"c") == Lost(close={1: (b"other", [7])})


def test_vanish_spares_the_connection_being_routed_and_skips_odd_ids():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    for conn_id in (b"1", b"2", b"x"):
        routed(state, 0, b"uuid %s / 2:{},0:," % conn_id)
    assert state.vanish(b"a", spare=b"2") == Lost(close={0: (b"uuid", [1])})
    state.ready(b"b", 0, 10)
    assert routed(state, 0, request(2)) == [b"b"]  # the spared one goes on, on another worker


def test_a_connection_moved_to_another_worker_is_not_closed_with_the_first():
    state = RelayState(1)
    state.ready(b"a", 0, 1)
    routed(state, 0, request(1))
    state.ready(b"b", 0, 5)
    state.remove(b"a")  # a said bye: connection 1 moves to b with its next request
    routed(state, 0, request(1))
    state.ready(b"a", 0, 5)
    assert state.vanish(b"a") == Lost()
    assert state.vanish(b"b") == Lost(close={0: (b"uuid", [1])})


# -- finished connections: a worker lets a connection go (numbers count per worker)


def test_every_message_sent_to_a_worker_counts_in_its_sequence():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    routed(state, 0, credits(1))
    routed(state, 0, request(2))
    assert state.peers[b"a"].sent == 3


def test_a_connection_reported_done_at_its_last_message_goes_where_the_credit_is_next():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))  # a's message 1
    state.ready(b"b", 0, 20)  # a joining worker, with more credit
    assert routed(state, 0, request(1)) == [b"a"]  # held: still on a (a's message 2)
    assert state.release(b"a", 0, b"1", 2)
    assert routed(state, 0, request(1)) == [b"b"]


def test_a_done_report_older_than_the_last_message_routed_there_keeps_the_connection():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    routed(state, 0, request(1))  # a pipelined second request, on its way to a
    state.ready(b"b", 0, 20)
    assert not state.release(b"a", 0, b"1", 1)  # a answered the first only
    assert routed(state, 0, request(1)) == [b"a"]


def test_a_credits_notice_routed_to_the_holder_counts_as_its_last_message():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    assert routed(state, 0, credits(1)) == [b"a"]
    assert not state.release(b"a", 0, b"1", 1)
    assert state.release(b"a", 0, b"1", 2)


def test_only_the_holder_can_let_a_connection_go():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    state.ready(b"b", 0, 5)
    routed(state, 0, request(1))
    assert not state.release(b"b", 0, b"1", 1)
    assert not state.release(b"a", 0, b"2", 1)  # a connection never routed
    assert state.release(b"a", 0, b"1", 1)
    assert not state.release(b"a", 0, b"1", 1)  # let go already


def test_a_done_report_from_before_a_disconnect_and_the_ids_reuse_never_matches():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(7))  # a's message 1
    routed(state, 0, disconnect(7))  # 2: the client left
    routed(state, 0, request(7))  # 3: Mongrel2 gave the id to a new client, a holds it
    state.ready(b"b", 0, 30)
    assert not state.release(b"a", 0, b"7", 1)  # a's report of the old client
    assert routed(state, 0, request(7)) == [b"a"]


def test_a_vanished_worker_has_only_the_connections_it_had_not_let_go_closed():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    routed(state, 0, request(2))
    assert state.release(b"a", 0, b"1", 1)
    assert state.vanish(b"a") == Lost(close={0: (b"uuid", [2])})


def test_a_forgotten_connection_forgets_its_sequence_number_too():
    state = RelayState(1, max_connections=2)
    state.ready(b"a", 0, 10)
    for conn_id in (1, 2, 3):
        routed(state, 0, request(conn_id))
    assert not state.release(b"a", 0, b"1", 1)  # forgotten: nothing to let go
    assert state.release(b"a", 0, b"3", 3)


# -- --resend: copies until a worker's start covers them; a lost worker's unstarted go again


def test_a_relay_without_resend_keeps_no_copy():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    assert not state.peers[b"a"].unstarted


def test_a_start_drops_the_copies_it_covers_and_asks_for_go_once():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    for conn_id in (1, 2, 3):
        routed(state, 0, request(conn_id))
    assert [number for number, _, _ in state.peers[b"a"].unstarted] == [1, 2, 3]
    assert start(state, b"a", 2)
    assert [number for number, _, _ in state.peers[b"a"].unstarted] == [3]
    assert not start(state, b"a", 2)  # nothing new: no go
    assert not start(state, b"a", 1)  # older still
    assert state.peers[b"a"].started == 2


def test_a_start_past_what_was_sent_or_from_an_unknown_worker_is_not_answered():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    assert not start(state, b"a", 2)
    assert not start(state, b"z", 1)
    assert state.peers[b"a"].started == 0


def test_a_start_lets_its_finished_connections_go_even_with_nothing_new_read():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    assert start(state, b"a", 1)
    state.ready(b"b", 0, 20)
    assert not start(state, b"a", 1, ((b"1", 1),))
    assert routed(state, 0, request(1)) == [b"b"]


def test_a_lost_worker_s_requests_never_started_are_sent_again_in_order():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    sent = [request(1, b"/one"), request(2), request(1, b"/two")]
    assert routed(state, 0, sent[0]) == [b"a"]
    state.ready(b"b", 0, 20)
    assert [routed(state, 0, frame) for frame in sent[1:]] == [[b"b"], [b"a"]]
    assert state.vanish(b"a") == Lost(resend=[(0, sent[0]), (0, sent[2])])
    state.ready(b"c", 0, 50)
    assert routed(state, 0, request(1)) == [b"c"]  # placed anew, where the credit is


def test_a_lost_worker_s_connection_with_a_started_request_is_closed_not_sent_again():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    routed(state, 0, request(2))
    assert start(state, b"a", 1)  # 1 may have run; 2 never started
    routed(state, 0, request(1))  # a pipelined second request of 1: never started either
    assert state.vanish(b"a") == Lost(close={0: (b"uuid", [1])}, resend=[(0, request(2))])


def test_a_lost_worker_s_finished_connection_is_neither_closed_nor_sent_again():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    assert start(state, b"a", 1)
    assert not start(state, b"a", 1, ((b"1", 1),))
    assert state.vanish(b"a") == Lost()


def test_the_spared_connection_has_its_unstarted_requests_sent_again_and_is_not_closed():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1, b"/started"))
    assert start(state, b"a", 1)
    routed(state, 0, request(1, b"/next"))
    assert state.vanish(b"a", spare=b"1") == Lost(resend=[(0, request(1, b"/next"))])


def test_a_copy_from_before_a_disconnect_and_the_ids_reuse_is_not_sent_again():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(7, b"/old"))
    routed(state, 0, disconnect(7))  # the client left before a started its request
    routed(state, 0, request(7, b"/new"))  # a new client with the same id
    assert state.vanish(b"a") == Lost(resend=[(0, request(7, b"/new"))])


def test_notices_and_malformed_messages_are_not_kept_to_send_again():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 10)
    routed(state, 0, b"garbage")
    routed(state, 0, credits(3))
    assert not state.peers[b"a"].unstarted
    assert state.peers[b"a"].sent == 2


def test_a_credits_notice_of_a_connection_let_go_goes_to_its_last_worker_and_binds_nothing():
    state = RelayState(1)
    state.ready(b"a", 0, 10)
    routed(state, 0, request(1))
    assert state.release(b"a", 0, b"1", 1)
    assert routed(state, 0, credits(1)) == [b"a"]
    state.ready(b"b", 0, 50)
    assert routed(state, 0, request(1)) == [b"b"]  # still placed like a new connection


def test_a_worker_that_never_says_start_has_no_copies_kept_and_is_closed_not_resent():
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, MAX_UNSTARTED + 10)
    for conn_id in range(MAX_UNSTARTED + 1):
        routed(state, 0, request(conn_id))
    assert state.ungated == [b"a"]
    assert not state.peers[b"a"].unstarted
    routed(state, 0, request(MAX_UNSTARTED + 1))
    assert not state.peers[b"a"].unstarted  # none kept from then on
    lost = state.vanish(b"a")
    assert lost.resend == []
    assert sorted(lost.close[0][1]) == list(range(MAX_UNSTARTED + 2))


def test_each_worker_gets_its_own_generation_and_a_start_of_another_is_not_taken():
    state = RelayState(1, resend=True, first_generation=40)
    state.ready(b"a", 0, 10)
    state.ready(b"b", 0, 10)
    assert (state.peers[b"a"].generation, state.peers[b"b"].generation) == (40, 41)
    routed(state, 0, request(1))
    holder = state.holders(0, b"1")[-1]
    other = 81 - state.peers[holder].generation  # the other worker's
    assert not state.start(holder, other, 1, ())
    assert state.peers[holder].started == 0
    assert state.start(holder, state.peers[holder].generation, 1, ())


def test_generations_never_start_at_zero():
    state = RelayState(1, first_generation=0)
    state.ready(b"a", 0, 1)
    assert state.peers[b"a"].generation == 1


def test_a_worker_that_said_start_keeps_its_copies_past_the_bound():
    """Its held connections may bring it more than MAX_UNSTARTED between two starts."""
    state = RelayState(1, resend=True)
    state.ready(b"a", 0, 1)
    routed(state, 0, request(0))
    assert start(state, b"a", 1)
    for _ in range(MAX_UNSTARTED + 5):  # one held connection, routed there without credit
        routed(state, 0, request(0))
    assert state.ungated == []
    assert len(state.peers[b"a"].unstarted) == MAX_UNSTARTED + 5

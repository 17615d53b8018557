"""Routing decisions of the relay (``m2bridge relay``): credits, connection affinity, notices.

The relay (``relay.py``) reads what Mongrel2 pushes and hands each message to one worker that
asked for work; this module decides which, without any I/O. Rules:

- A worker (a *peer*, named by its ROUTER identity) serves one source (the index of the
  Mongrel2 ``send_spec``) and grants *credit*: how many more messages it takes. Every
  message forwarded to it costs one credit; it grants more as it reads them.
- The relay numbers what it sends each worker (1, 2, ...), as the worker numbers what it
  reads (``relay.wire``). A worker runs a message only once it has said ``start K`` for it
  (``start``, answered ``go K``); until then the relay keeps a copy of it (``Peer.unstarted``).
- A request of a connection some live worker holds goes to that worker again (pipelined
  requests, upload pieces and WebSocket frames stay in order on one worker). A worker lets a
  connection go by reporting it finished (everything of it answered, nothing held) with the
  number of the last message of it that it read; the report counts only if nothing of that
  connection was routed there since (``release``). The connection's next request is then
  placed like a new one.
- A request of a new connection goes to the live worker with the most credit (ties taken in
  turn); with no credit anywhere it is held (``route`` returns None) until a worker grants.
- Notices (path ``@*``): a ``Disconnect`` goes to every live worker that served the connection
  (and the connection is forgotten), ``Credits`` to the one holding it; a notice of a
  connection no live worker holds goes to all workers of its source.
- ``bye`` (a draining worker) and ``drop`` (a vanished one) remove the worker at once: no
  message is routed to it afterwards; its connections move to others with their next message.
- A worker that vanished without ``bye`` (killed: crashed, hung and killed by the supervisor,
  or its host lost) took what it had started with it. ``vanish`` forgets the connections it
  held and sorts them: one it had let go has nothing in flight; one of which it started
  nothing gets its messages sent again, to another worker (``Lost.resend``); one of which it
  started something may have run it, and is closed (``Lost.close``, with the ``sender`` of its
  source): a request is never sent twice.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from m2bridge.relay.wire import WINDOW
from m2bridge.wire.notice import is_raw_disconnect, is_raw_notice

#: Connections remembered at most (the oldest are forgotten first).
MAX_CONNECTIONS = 100_000
#: Workers remembered per connection (for its Disconnect notice).
MAX_HOLDERS = 4
#: The largest credit one grant may carry.
MAX_GRANT = 1_000_000
#: Requests a worker may have been sent before its first ``start`` (with ``resend``). A worker
#: that asks before it runs says ``start`` after its first read batch (at most its credit,
#: and the connections it holds); one that has not past this many does not ask (a version
#: from before ``start``): its copies are dropped and, lost, it has its connections closed.
MAX_UNSTARTED = 4 * WINDOW


@dataclass
class Peer:
    """One worker connected to the relay."""

    source: int
    credit: int = 0
    #: Messages sent to it so far: the number of the last one.
    sent: int = 0
    #: The number of the last message it may have started (its last ``start``).
    started: int = 0
    #: The requests sent to it and not started yet: ``(number, connection key, message)``.
    unstarted: deque[tuple[int, tuple[int, bytes], bytes]] = field(default_factory=deque)
    #: It asks before it runs (``start``), as far as the relay can tell (``MAX_UNSTARTED``).
    asks: bool = True
    #: The generation of the ``count`` it was sent (its ``start`` messages carry it).
    generation: int = 0


@dataclass
class Lost:
    """What to do about a vanished worker's connections (``RelayState.vanish``)."""

    #: ``{source: (sender, conn ids)}``: connections with a request that may have run.
    close: dict[int, tuple[bytes, list[int]]] = field(default_factory=dict)
    #: ``(source, message)``, in the order they were routed: requests that never started.
    resend: list[tuple[int, bytes]] = field(default_factory=list)


class RelayState:
    """Workers, their credit, and which worker holds which connection."""

    def __init__(
        self,
        sources: int,
        max_connections: int = MAX_CONNECTIONS,
        *,
        resend: bool = False,
        first_generation: int = 1,
    ) -> None:
        if sources < 1:
            raise ValueError("a relay needs at least one source")
        #: Workers wait for ``go`` (``relay.wire``): copies are kept, and what a lost worker
        #: had not started is sent again; otherwise a lost worker's connections are all closed.
        self.resend = resend
        #: Workers found running without ``start`` since the relay last looked (it logs them).
        self.ungated: list[bytes] = []
        #: The generation of the next worker's ``count`` (a relay starts at a random one, so
        #: a ``start`` meant for the relay before a restart is not taken; never 0).
        self._generation = max(1, first_generation)
        self.peers: dict[bytes, Peer] = {}
        self._by_source: list[list[bytes]] = [[] for _ in range(sources)]
        self._holders: dict[tuple[int, bytes], list[bytes]] = {}
        #: The connections held (not let go): the number of the first and of the last
        #: message routed to the holder since it took the connection.
        self._first: dict[tuple[int, bytes], int] = {}
        self._last: dict[tuple[int, bytes], int] = {}
        self._turn = 0
        self._max_connections = max_connections
        #: the last sender (Mongrel2 server uuid) seen per source: a close needs it
        self.senders: list[bytes | None] = [None] * sources

    @property
    def sources(self) -> int:
        """How many Mongrel2 ``send_spec`` sources the relay reads."""
        return len(self._by_source)

    def ready(self, peer: bytes, source: int, credits: int) -> bool:
        """``peer`` takes ``credits`` more messages of ``source``; False for a bad grant."""
        if not 0 <= source < len(self._by_source) or not 0 <= credits <= MAX_GRANT:
            return False
        known = self.peers.get(peer)
        if known is None:
            self.peers[peer] = Peer(source, credits, generation=self._generation)
            self._generation += 1
            self._by_source[source].append(peer)
            return True
        if known.source != source:
            return False
        known.credit += credits
        return True

    def refresh(self, peer: bytes, source: int, credits: int) -> bool:
        """An idle ``peer`` takes at least ``credits``: registers it again after a relay
        restart (it lost every grant); False for a bad grant."""
        known = self.peers.get(peer)
        if known is None or known.source != source:
            return self.ready(peer, source, credits)
        known.credit = max(known.credit, min(credits, MAX_GRANT))
        return 0 <= credits <= MAX_GRANT

    def remove(self, peer: bytes) -> bool:
        """Stop routing to ``peer`` (it said bye, or vanished); False if it was unknown."""
        known = self.peers.pop(peer, None)
        if known is None:
            return False
        self._by_source[known.source].remove(peer)
        return True

    def vanish(self, peer: bytes, spare: bytes | None = None) -> Lost:
        """Remove ``peer``, which vanished without ``bye``, and sort the connections it held
        (see the module's rules); nothing for an unknown peer (it said ``bye``, or vanished
        before).

        ``spare`` is the id of a connection whose new message is being routed now: its client
        waits for that one only, so it is not closed; its requests not started are sent again.
        """
        known = self.peers.get(peer)
        lost = Lost()
        if known is None:
            return lost
        self.remove(peer)
        again: dict[tuple[int, bytes], int] = {}  # the connections to send again: their first
        for key in [key for key, seen in self._holders.items() if seen[-1] == peer]:
            del self._holders[key]
            first = self._first.pop(key, None)
            self._last.pop(key, None)
            source, conn_id = key
            if first is None:
                continue  # let go: nothing of it was in flight there
            if conn_id == spare or (known.asks and self.resend and first > known.started):
                again[key] = first
                continue
            sender = self.senders[source]
            if sender is not None and conn_id.isdigit():
                lost.close.setdefault(source, (sender, []))[1].append(int(conn_id))
        lost.resend = [  # not a copy from before a Disconnect and a reuse of the id
            (key[0], frame)
            for number, key, frame in known.unstarted
            if number >= again.get(key, number + 1)
        ]
        return lost

    def start(
        self, peer: bytes, generation: int, read: int, finished: tuple[tuple[bytes, int], ...]
    ) -> bool:
        """``peer`` may run its messages up to number ``read`` (their copies are dropped) and
        has finished the connections in ``finished``; whether to answer ``go``. False, and
        nothing done, for an unknown peer, a ``start`` of another ``count`` than its last
        (meant for the relay before a restart, or for this one before it dropped that worker)
        or one past what was sent; False for a ``read`` already covered."""
        known = self.peers.get(peer)
        if known is None or generation != known.generation or read > known.sent:
            return False
        for conn_id, seq in finished:
            self.release(peer, known.source, conn_id, seq)
        if read <= known.started:
            return False
        known.started = read
        unstarted = known.unstarted
        while unstarted and unstarted[0][0] <= read:
            unstarted.popleft()
        return True

    def release(self, peer: bytes, source: int, conn_id: bytes, seq: int) -> bool:
        """``peer`` has answered everything of this connection up to its message ``seq``: let
        the connection go if that was the last message routed there (else a later one is on
        its way, or the report predates a reuse of the id); whether it was let go."""
        key = (source, conn_id)
        if self._last.get(key) != seq or self._holder(key) != peer:
            return False
        del self._last[key]
        del self._first[key]
        return True

    def route(self, source: int, frame: bytes) -> list[bytes] | None:
        """The workers to send ``frame`` to (charged one credit each); None: hold it for now.

        An empty list means nobody can take it (a notice while no worker is connected).
        """
        parts = frame.split(b" ", 3)
        if len(parts) < 4:  # malformed: any worker answers it (400) and logs it
            target = self._pick(source)
            return None if target is None else self._charge([target])
        key = (source, parts[1])
        self.senders[source] = parts[0]
        if is_raw_notice(parts[2]):
            return self._charge(self._notice_targets(source, key, is_raw_disconnect(parts[3])))
        holder = self._holder(key)
        if holder is None:
            holder = self._pick(source)
            if holder is None:
                return None
            self._first[key] = self.peers[holder].sent + 1
        self._remember(key, holder)
        known = self.peers[holder]
        known.credit -= 1
        known.sent = sent = known.sent + 1
        self._last[key] = sent
        if self.resend and known.asks:
            known.unstarted.append((sent, key, frame))
            if len(known.unstarted) > MAX_UNSTARTED and not known.started:
                self._never_asks(holder, known)
        return [holder]

    def _never_asks(self, peer: bytes, known: Peer) -> None:
        """``peer`` runs what it reads without ``start``: keep no copy for it (``ungated``
        lists it once, for the relay to log)."""
        known.asks = False
        known.unstarted.clear()
        self.ungated.append(peer)

    def holders(self, source: int, conn_id: bytes) -> list[bytes]:
        """The live workers that served this connection, the current holder last."""
        return [p for p in self._holders.get((source, conn_id), ()) if p in self.peers]

    def _notice_targets(self, source: int, key: tuple[int, bytes], disconnect: bool) -> list[bytes]:
        live = self.holders(*key)
        if disconnect:
            self._holders.pop(key, None)
            self._first.pop(key, None)
            self._last.pop(key, None)
        if not live:
            return list(self._by_source[source])
        if disconnect:
            return live
        holder = self._holder(key)
        if holder is not None:  # it reads the notice: the last message of the connection there
            self._last[key] = self.peers[holder].sent + 1
        return live[-1:]

    def _holder(self, key: tuple[int, bytes]) -> bytes | None:
        """The live worker holding this connection (not let go), or None."""
        if key not in self._last:
            return None
        peer = self._holders[key][-1]
        return peer if peer in self.peers else None

    def _pick(self, source: int) -> bytes | None:
        candidates = self._by_source[source]
        if not candidates:
            return None
        self._turn += 1
        start = self._turn % len(candidates)
        best, best_credit = None, 0
        for peer in candidates[start:] + candidates[:start]:
            credit = self.peers[peer].credit
            if credit > best_credit:
                best, best_credit = peer, credit
        return best

    def _remember(self, key: tuple[int, bytes], peer: bytes) -> None:
        seen = self._holders.get(key)
        if seen is None:
            if len(self._holders) >= self._max_connections:
                oldest = next(iter(self._holders))
                del self._holders[oldest]
                self._first.pop(oldest, None)
                self._last.pop(oldest, None)
            self._holders[key] = [peer]
        elif seen[-1] != peer:
            if peer in seen:
                seen.remove(peer)
            seen.append(peer)
            del seen[:-MAX_HOLDERS]

    def _charge(self, targets: list[bytes]) -> list[bytes]:
        for peer in targets:
            known = self.peers[peer]
            known.credit -= 1
            known.sent += 1
        return targets

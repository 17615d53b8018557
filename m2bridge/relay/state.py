"""Routing decisions of the relay (``m2bridge relay``): credits, connection affinity, notices.

The relay (``relay.py``) reads what Mongrel2 pushes and hands each message to one worker that
asked for work; this module decides which, without any I/O. Rules:

- A worker (a *peer*, named by its ROUTER identity) serves one source (the index of the
  Mongrel2 ``send_spec``) and grants *credit*: how many more messages it takes. Every
  message forwarded to it costs one credit; it grants more as it reads them.
- A request of a connection some live worker already served goes to that worker again
  (pipelined requests, upload pieces and WebSocket frames stay in order on one worker).
- A request of a new connection goes to the live worker with the most credit (ties taken in
  turn); with no credit anywhere it is held (``route`` returns None) until a worker grants.
- Notices (path ``@*``): a ``Disconnect`` goes to every live worker that served the connection
  (and the connection is forgotten), ``Credits`` to the one holding it; a notice of a
  connection no live worker holds goes to all workers of its source.
- ``bye`` (a draining worker) and ``drop`` (a vanished one) remove the worker at once: no
  message is routed to it afterwards; its connections move to others with their next message.
- A worker that vanished without ``bye`` (killed: crashed, or hung and killed by the
  supervisor) took its requests with it: ``vanish`` also forgets the connections it held last
  and returns their ids, with the ``sender`` of their source, for the relay to close.

Must not import zmq, gevent, socket, subprocess.
"""

from __future__ import annotations

from dataclasses import dataclass

from m2bridge.wire.notice import is_raw_disconnect, is_raw_notice

#: Connections remembered at most (the oldest are forgotten first).
MAX_CONNECTIONS = 100_000
#: Workers remembered per connection (for its Disconnect notice).
MAX_HOLDERS = 4
#: The largest credit one grant may carry.
MAX_GRANT = 1_000_000


@dataclass
class Peer:
    """One worker connected to the relay."""

    source: int
    credit: int = 0


class RelayState:
    """Workers, their credit, and which worker holds which connection."""

    def __init__(self, sources: int, max_connections: int = MAX_CONNECTIONS) -> None:
        if sources < 1:
            raise ValueError("a relay needs at least one source")
        self.peers: dict[bytes, Peer] = {}
        self._by_source: list[list[bytes]] = [[] for _ in range(sources)]
        self._holders: dict[tuple[int, bytes], list[bytes]] = {}
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
            self.peers[peer] = Peer(source, credits)
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

    def vanish(self, peer: bytes, spare: bytes | None = None) -> dict[int, tuple[bytes, list[int]]]:
        """Remove ``peer``, which vanished without ``bye``, and forget the connections it held
        last (it took their requests with it): ``{source: (sender, conn ids)}`` to close, empty
        for an unknown peer (it said ``bye``, or vanished before).

        ``spare`` is the id of a connection whose new message is being routed now: its client
        waits for that one only, which another worker answers, so it is not closed.
        """
        if not self.remove(peer):
            return {}
        held: dict[int, tuple[bytes, list[int]]] = {}
        for key in [key for key, seen in self._holders.items() if seen[-1] == peer]:
            del self._holders[key]
            source, conn_id = key
            sender = self.senders[source]
            if sender is not None and conn_id.isdigit() and conn_id != spare:
                held.setdefault(source, (sender, []))[1].append(int(conn_id))
        return held

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
        self._remember(key, holder)
        return self._charge([holder])

    def holders(self, source: int, conn_id: bytes) -> list[bytes]:
        """The live workers that served this connection, the current holder last."""
        return [p for p in self._holders.get((source, conn_id), ()) if p in self.peers]

    def _notice_targets(self, source: int, key: tuple[int, bytes], disconnect: bool) -> list[bytes]:
        live = self.holders(*key)
        if disconnect:
            self._holders.pop(key, None)
        if not live:
            return list(self._by_source[source])
        return live if disconnect else live[-1:]

    def _holder(self, key: tuple[int, bytes]) -> bytes | None:
        for peer in reversed(self._holders.get(key, ())):
            if peer in self.peers:
                return peer
        return None

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
                del self._holders[next(iter(self._holders))]
            self._holders[key] = [peer]
        elif seen[-1] != peer:
            if peer in seen:
                seen.remove(peer)
            seen.append(peer)
            del seen[:-MAX_HOLDERS]

    def _charge(self, targets: list[bytes]) -> list[bytes]:
        for peer in targets:
            self.peers[peer].credit -= 1
        return targets

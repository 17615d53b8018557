"""All channels of one worker: one per Mongrel2 server, straight or behind the relay."""

from __future__ import annotations

import zmq.green as zmq

from m2bridge.relay.wire import relay_sources
from m2bridge.worker.channel import CLOSE_LINGER_MS, Channel
from m2bridge.worker.relay_channel import RelayChannel


class Transport:
    """All channels of one worker, on one fresh ``zmq.green`` context of this process."""

    def __init__(
        self,
        send_specs: tuple[str, ...],
        recv_specs: tuple[str, ...],
        identity: str | None = None,
        relays: tuple[str, ...] = (),
    ) -> None:
        if len(send_specs) != len(recv_specs) or not send_specs:
            raise ValueError("send_specs and recv_specs must pair up one to one")
        sources = relay_sources(relays, len(recv_specs)) if relays else []
        self.context = zmq.Context()
        if relays:  # requests come from the relays (relay_wire.relay_sources pairs them)
            self.channels: list[Channel] = [
                RelayChannel(self.context, index, (relay, recv_spec), identity, source)
                for index, ((relay, source), recv_spec) in enumerate(
                    zip(sources, recv_specs, strict=True)
                )
            ]
            return
        self.channels = [
            Channel(self.context, index, specs, identity)
            for index, specs in enumerate(zip(send_specs, recv_specs, strict=True))
        ]

    def close(self, linger_ms: int = CLOSE_LINGER_MS) -> None:
        """Close every socket and terminate the context (waits for lingering replies)."""
        for channel in self.channels:
            channel.close(linger_ms)
        self.context.term()

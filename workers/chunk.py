"""The chunk: what the bridge hands a Celery task, and the contract between them.

One chunk holds consecutive valid messages of one partition. It travels as plain JSON-able lists
(not objects) because it crosses RabbitMQ once per chunk and is decoded once per event; field order
is fixed by `ChunkEvent`. Each event carries the context of its own `kafka.consume` span, so the
worker can link the insert to every event's trace without Celery's publish signals (which eager mode
never fires, celery/celery#3864).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

# What an event adds to its chunk's message besides its Kafka value and tracestate: the consume
# span's traceparent, offset, time and the list's punctuation. The chunker's byte bound counts an
# event as these three (workers/bridge/consumer.py); the id and type also travel beside the payload
# and JSON escaping lengthens it, so a message is at most about twice the bound (typically +15%).
EVENT_WIRE_OVERHEAD = 100


class ChunkEvent(NamedTuple):
    offset: int
    event_id: str
    traceparent: str  # of the event's kafka.consume span; '' when the message had no context
    tracestate: str
    event_type: str
    received_at_ms: int  # Kafka message timestamp: when ingest produced it
    payload: str  # the event JSON as it was in Kafka


@dataclass(frozen=True)
class Chunk:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    events: tuple[ChunkEvent, ...]
    ack_to: str  # where the worker reports completion (the owning bridge's ack list)
    attempt: int = 1

    @property
    def token(self) -> str:
        """Identity of the chunk; also ClickHouse's insert_deduplication_token, as in the Kafka Connect sink."""
        return f"{self.topic}-{self.partition}-{self.first_offset}-{self.last_offset}"

    def to_wire(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "first_offset": self.first_offset,
            "last_offset": self.last_offset,
            "ack_to": self.ack_to,
            "attempt": self.attempt,
            "events": [list(e) for e in self.events],
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Chunk:
        return cls(
            topic=wire["topic"],
            partition=int(wire["partition"]),
            first_offset=int(wire["first_offset"]),
            last_offset=int(wire["last_offset"]),
            # _make builds each tuple in C (ChunkEvent(*e) runs a Python __new__ per event).
            events=tuple(map(ChunkEvent._make, wire["events"])),
            ack_to=wire.get("ack_to", ""),
            attempt=int(wire.get("attempt", 1)),
        )

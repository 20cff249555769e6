"""Decide whether a Kafka message is a valid audit event, before it is chunked.

An invalid message raises InvalidMessage with a reason a human can act on; the bridge dead-letters
it and moves on. The payload is kept as the exact text that was in Kafka (no re-serialisation),
unless an event_id had to be added.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sentinel import events
from sentinel.jsonvalues import JsonError, loads_noting_huge_ints

# Stable ids for events that arrive without one: the same message always gets the same id,
# so a redelivery still deduplicates.
_ID_NAMESPACE = uuid.UUID("6f1c1d2e-8a4b-4c55-9a57-5e4e7d3b2a10")


class InvalidMessage(ValueError):
    """The message can never be processed; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DecodedEvent(NamedTuple):  # one per message: a frozen dataclass's __init__ costs 4x a tuple
    event_id: str
    event_type: str
    payload: str


def decode(
    value: bytes | None,
    header_event_id: str | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    origin: str | None = None,
    max_bytes: int | None = None,
) -> DecodedEvent:
    """The event in `value`, or InvalidMessage. `origin` ("topic-partition-offset") names where a
    replayed message first was, so the id assigned to an event without one is stable across replays.
    A value over `max_bytes` is refused: it would not fit in a chunk (workers/bridge/chunker.py)."""
    if value is None:
        raise InvalidMessage("empty message: no value")
    if max_bytes is not None and len(value) > max_bytes:
        raise InvalidMessage(f"too large: {len(value)} bytes, more than a chunk holds ({max_bytes})")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"value is not UTF-8: {exc}") from None
    try:
        event, may_hold_huge_ints = loads_noting_huge_ints(value)
    except JsonError as exc:
        raise InvalidMessage(f"value is not JSON: {exc}") from None
    # One event per message: its bytes tell whether the walk for depth and huge integers can find
    # anything, and for an ordinary event it cannot (the walk was a third of validation).
    problem = events.validate(event, walk_values=may_hold_huge_ints or events.may_nest_too_deep(value))
    if problem is not None:
        raise InvalidMessage(f"invalid event: {problem.field}: {problem.reason}")
    event_id = event.get("event_id")
    if event_id is None:
        header_id = events.parse_event_id(header_event_id) if header_event_id else None
        event_id = str(header_id or uuid.uuid5(_ID_NAMESPACE, origin or f"{topic}-{partition}-{offset}"))
        # Spliced into the text rather than re-serialised: the rest stays byte for byte as sent.
        text = _with_event_id(text, event_id)
    return DecodedEvent(event_id, event["type"], text)


def _with_event_id(text: str, event_id: str) -> str:
    """`text` (a JSON object with at least `type`) with `"event_id"` added as its first member."""
    brace = text.index("{")
    return f'{text[: brace + 1]}"event_id":"{event_id}",{text[brace + 1 :]}'

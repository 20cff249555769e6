"""workers.chunk: the chunk crosses RabbitMQ as JSON and comes back equal."""

from __future__ import annotations

import json

from workers.chunk import Chunk, ChunkEvent

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _chunk(attempt: int = 1) -> Chunk:
    events = (
        ChunkEvent(10, "0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f", TRACEPARENT, "k=v", "tool_call", 1_700_000_000_123,
                   '{"type": "tool_call", "tool": "café"}'),
        ChunkEvent(11, "7f7a3c1e-0d2b-4a8e-b3c1-5e6f7a8b9c0d", "", "", "session_start", 1_700_000_000_456, "{}"),
    )  # fmt: skip
    return Chunk("mcp.events", 3, 10, 11, events, ack_to="sentinel:acks:bridge-1", attempt=attempt)


def test_round_trip_through_json() -> None:
    chunk = _chunk(attempt=3)
    back = Chunk.from_wire(json.loads(json.dumps(chunk.to_wire())))
    assert back == chunk
    assert all(isinstance(e, ChunkEvent) for e in back.events)
    assert back.events[0].payload == '{"type": "tool_call", "tool": "café"}'
    assert back.token == "mcp.events-3-10-11"


def test_wire_form_is_plain_json_types() -> None:
    wire = _chunk().to_wire()
    assert json.loads(json.dumps(wire)) == wire
    assert wire["events"][0] == [
        10,
        "0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f",
        TRACEPARENT,
        "k=v",
        "tool_call",
        1_700_000_000_123,
        '{"type": "tool_call", "tool": "café"}',
    ]


def test_from_wire_defaults_ack_to_and_attempt() -> None:
    wire = _chunk().to_wire()
    del wire["ack_to"], wire["attempt"]
    back = Chunk.from_wire(wire)
    assert back.ack_to == ""
    assert back.attempt == 1


def test_token_names_topic_partition_and_offset_range() -> None:
    assert _chunk().token == "mcp.events-3-10-11"

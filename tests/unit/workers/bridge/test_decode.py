"""workers.bridge.decode: which Kafka messages are valid audit events, and their payload text."""

from __future__ import annotations

import uuid

import orjson
import pytest

from workers.bridge.decode import InvalidMessage, decode

EVENT_ID = "0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f"
HEADER_ID = "7f7a3c1e-0d2b-4a8e-b3c1-5e6f7a8b9c0d"


def _decode(value: bytes | None, header_id: str | None = None, offset: int = 7) -> object:
    return decode(value, header_id, topic="mcp.events", partition=2, offset=offset)


def test_valid_event_keeps_its_payload_byte_for_byte() -> None:
    # Spacing, key order and escapes that a re-serialisation would change.
    raw = '{ "type" : "tool_call",  "event_id": "' + EVENT_ID + '", "z": 1, "a": "caf\\u00e9", "n": 1.50 }'
    decoded = _decode(raw.encode())
    assert decoded.payload == raw
    assert decoded.event_id == EVENT_ID
    assert decoded.event_type == "tool_call"


def test_non_ascii_payload_is_kept_as_text() -> None:
    raw = '{"type": "tool_call", "event_id": "' + EVENT_ID + '", "tool": "café ☕"}'
    assert _decode(raw.encode("utf-8")).payload == raw


def test_missing_event_id_gets_a_deterministic_id() -> None:
    value = b'{"type": "tool_call", "tool": "search"}'
    first = _decode(value, offset=7)
    again = _decode(value, offset=7)
    elsewhere = _decode(value, offset=8)
    assert first.event_id == again.event_id
    assert first.event_id != elsewhere.event_id
    assert uuid.UUID(first.event_id).version == 5
    other_partition = decode(value, None, topic="mcp.events", partition=3, offset=7)
    assert other_partition.event_id != first.event_id


def test_an_assigned_id_is_written_into_the_payload() -> None:
    decoded = _decode(b'{"type": "tool_call", "tool": "search"}')
    payload = orjson.loads(decoded.payload)
    assert payload == {"type": "tool_call", "tool": "search", "event_id": decoded.event_id}


def test_missing_event_id_takes_the_header_id() -> None:
    decoded = _decode(b'{"type": "tool_call"}', header_id=HEADER_ID)
    assert decoded.event_id == HEADER_ID
    assert orjson.loads(decoded.payload)["event_id"] == HEADER_ID


def test_the_payload_id_wins_over_the_header_id() -> None:
    raw = b'{"type": "tool_call", "event_id": "%s"}' % EVENT_ID.encode()
    assert _decode(raw, header_id=HEADER_ID).event_id == EVENT_ID


def test_a_header_id_that_is_not_a_uuid_falls_back_to_the_derived_id() -> None:
    value = b'{"type": "tool_call"}'
    assert _decode(value, header_id="not-a-uuid").event_id == _decode(value).event_id


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, ["empty", "no value"]),
        (b'{"type": "tool_call", "x": "\xff\xfe"}', ["UTF-8"]),
        (b"{not json", ["not JSON"]),
        (b"", ["not JSON"]),
        (b"[1, 2]", ["$", "JSON object", "array"]),
        (b'"tool_call"', ["$", "JSON object", "string"]),
        (b"42", ["$", "number"]),
        (b'{"tool": "search"}', ["type", "required"]),
        (b'{"type": ""}', ["type", "non-empty"]),
        (b'{"type": "tool_call", "event_id": "nope"}', ["event_id", "UUID"]),
        (b'{"type": "tool_call", "timestamp": "yesterday"}', ["timestamp", "RFC 3339"]),
    ],
)
def test_invalid_messages_raise_with_a_useful_reason(value: bytes | None, words: list[str]) -> None:
    with pytest.raises(InvalidMessage) as caught:
        _decode(value)
    for word in words:
        assert word in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_an_added_event_id_leaves_the_rest_of_the_text_as_sent() -> None:
    from workers.bridge.decode import decode

    value = b'  {"type": "tool_call",  "n": 1.50, "s": "\\u00e9"}'
    event = decode(value, None, topic="mcp.events", partition=0, offset=3)
    assert event.payload.endswith('"type": "tool_call",  "n": 1.50, "s": "\\u00e9"}')
    assert event.payload.startswith('  {"event_id":"')
    import orjson

    assert orjson.loads(event.payload)["event_id"] == event.event_id


def test_deep_nesting_and_huge_integers_are_dead_lettered_not_raised() -> None:
    import pytest

    from workers.bridge.decode import InvalidMessage, decode

    deep = b'{"type":"t","a":' + b"[" * 300 + b"1" + b"]" * 300 + b"}"
    with pytest.raises(InvalidMessage, match="nested deeper"):
        decode(deep, None, topic="mcp.events", partition=0, offset=1)
    with pytest.raises(InvalidMessage, match="64-bit"):
        decode(b'{"type":"t","n":18446744073709551616}', None, topic="mcp.events", partition=0, offset=2)


@pytest.mark.parametrize("levels", [62, 63, 64, 65])
def test_the_byte_count_shortcut_decides_depth_exactly_as_the_walk(levels: int) -> None:
    """Around the limit (and with brackets inside strings, which the count also sees), decode
    agrees with validate's full walk on the parsed event."""
    from sentinel import events

    for filler in (b"", b',"s":"' + b"[" * 10 + b'"'):
        # `levels` counts the event object itself: the event is 1, the field's array 2, and so on.
        value = b'{"type":"t"' + filler + b',"d":' + b"[" * (levels - 1) + b"1" + b"]" * (levels - 1) + b"}"
        walked = events.validate(orjson.loads(value))
        if walked is None:
            assert decode(value, None, topic="mcp.events", partition=0, offset=1).event_type == "t"
        else:
            with pytest.raises(InvalidMessage, match="nested deeper"):
                decode(value, None, topic="mcp.events", partition=0, offset=1)


def test_a_huge_integer_deep_inside_strings_and_objects_is_still_found() -> None:
    value = b'{"type":"t","attributes":{"a":{"b":[{"c":123456789012345678901234}]}},"s":"x"}'
    with pytest.raises(InvalidMessage, match="64-bit"):
        decode(value, None, topic="mcp.events", partition=0, offset=1)


def test_a_value_over_max_bytes_is_refused_and_one_at_the_limit_is_not() -> None:
    value = orjson.dumps({"type": "tool_call", "attributes": {"blob": "x" * 100}})
    assert decode(value, None, topic="t", partition=0, offset=0, max_bytes=len(value)).event_type == "tool_call"
    with pytest.raises(InvalidMessage) as caught:
        decode(value, None, topic="t", partition=0, offset=0, max_bytes=len(value) - 1)
    assert caught.value.reason == f"too large: {len(value)} bytes, more than a chunk holds ({len(value) - 1})"

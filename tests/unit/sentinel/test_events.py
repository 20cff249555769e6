"""sentinel.events: what a valid audit event is, and which field is wrong when it is not."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sentinel import events

EVENT_ID = "0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f"


def _event(**fields: Any) -> dict[str, Any]:
    return {"type": "tool_call", **fields}


def test_minimal_event_is_valid() -> None:
    assert events.validate({"type": "tool_call"}) is None


def test_full_event_with_extra_fields_is_valid() -> None:
    event = _event(
        event_id=EVENT_ID,
        timestamp="2024-05-01T12:30:00.123456Z",
        session_id="s-1",
        server="github",
        method="tools/call",
        tool="search",
        status="ok",
        duration_ms=12.5,
        attributes={"k": "v"},
        anything_else=[1, 2, 3],
    )
    assert events.validate(event) is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [([], "an array"), ("x", "a string"), (1, "a number"), (None, "null"), (True, "a boolean")],
)
def test_event_must_be_an_object(value: Any, kind: str) -> None:
    problem = events.validate(value)
    assert problem is not None
    assert problem.field == "$"
    assert "JSON object" in problem.reason
    assert kind in problem.reason


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        ({}, "type", "required"),
        ({"type": None}, "type", "required"),
        ({"type": ""}, "type", "non-empty"),
        ({"type": "   "}, "type", "non-empty"),
        ({"type": 3}, "type", "string"),
        ({"type": "x" * (events.MAX_TYPE_LENGTH + 1)}, "type", str(events.MAX_TYPE_LENGTH)),
        (_event(event_id="not-a-uuid"), "event_id", "UUID"),
        (_event(event_id=""), "event_id", "UUID"),
        (_event(event_id=None), "event_id", "UUID"),
        (_event(event_id=12), "event_id", "UUID"),
        (_event(timestamp="yesterday"), "timestamp", "RFC 3339"),
        (_event(timestamp=1714566600), "timestamp", "RFC 3339"),
        (_event(timestamp="2024-05-01T12:30:00"), "timestamp", "RFC 3339"),  # no offset
        (_event(timestamp="2024-02-30T12:30:00Z"), "timestamp", "real"),
        (_event(timestamp="2024-05-01T25:00:00Z"), "timestamp", "real"),
        (_event(session_id=5), "session_id", "string"),
        (_event(server=["a"]), "server", "string"),
        (_event(method={}), "method", "string"),
        (_event(tool=True), "tool", "string"),
        (_event(status=200), "status", "string"),
        (_event(tool="x" * (events.MAX_ID_LENGTH + 1)), "tool", str(events.MAX_ID_LENGTH)),
        (_event(duration_ms=-1), "duration_ms", "non-negative"),
        (_event(duration_ms="12"), "duration_ms", "number"),
        (_event(duration_ms=True), "duration_ms", "number"),
        (_event(attributes=[1]), "attributes", "JSON object"),
        (_event(attributes="k=v"), "attributes", "JSON object"),
    ],
)
def test_each_field_is_checked_and_named(event: dict[str, Any], field: str, words: str) -> None:
    problem = events.validate(event)
    assert problem is not None
    assert problem.field == field
    assert words in problem.reason
    assert problem.as_dict() == {"field": field, "reason": problem.reason}


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-05-01T12:30:00Z",
        "2024-05-01t12:30:00z",
        "2024-05-01 12:30:00+02:00",
        "2024-05-01T12:30:00.5-07:30",
        "2024-05-01T12:30:00.123456789Z",
    ],
)
def test_rfc3339_timestamps_are_accepted(timestamp: str) -> None:
    assert events.validate(_event(timestamp=timestamp)) is None


def test_optional_fields_may_be_null() -> None:
    assert events.validate(_event(session_id=None, tool=None, duration_ms=None, attributes=None)) is None


def test_boundaries_are_inclusive() -> None:
    assert events.validate({"type": "x" * events.MAX_TYPE_LENGTH}) is None
    assert events.validate(_event(tool="x" * events.MAX_ID_LENGTH)) is None
    assert events.validate(_event(duration_ms=0)) is None


def test_first_problem_is_reported() -> None:
    problem = events.validate({"type": "", "event_id": "nope"})
    assert problem is not None
    assert problem.field == "type"


def test_parse_event_id() -> None:
    assert events.parse_event_id(EVENT_ID) == uuid.UUID(EVENT_ID)
    assert events.parse_event_id(EVENT_ID.upper()) == uuid.UUID(EVENT_ID)
    assert events.parse_event_id("nope") is None
    assert events.parse_event_id(None) is None
    assert events.parse_event_id(123) is None
    assert events.parse_event_id("a" * 65) is None


def test_new_event_ids_are_distinct_version_4_uuids() -> None:
    import uuid

    from sentinel.events import new_event_ids

    ids = new_event_ids(1000)
    assert len(set(ids)) == 1000
    for value in ids[:50]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == value
    assert new_event_ids(0) == []


def test_nesting_deeper_than_the_limit_is_refused_naming_the_field() -> None:
    from sentinel.events import MAX_DEPTH, validate

    deep: object = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    problem = validate({"type": "t", "attributes": {"d": deep}})
    assert problem is not None and problem.field == "attributes" and "nested deeper" in problem.reason
    shallow: object = 1
    for _ in range(MAX_DEPTH - 2):
        shallow = [shallow]
    assert validate({"type": "t", "attributes": {"d": shallow}}) is None


def test_only_canonical_uuid_spellings_are_event_ids() -> None:
    from sentinel.events import parse_event_id

    assert parse_event_id("6F1C1D2E-8A4B-4C55-9A57-5E4E7D3B2A10") is not None
    for spelling in (
        "{6f1c1d2e-8a4b-4c55-9a57-5e4e7d3b2a10}",
        "urn:uuid:6f1c1d2e-8a4b-4c55-9a57-5e4e7d3b2a10",
        "6f1c1d2e8a4b4c559a575e4e7d3b2a10",
        " 6f1c1d2e-8a4b-4c55-9a57-5e4e7d3b2a10",
    ):
        assert parse_event_id(spelling) is None

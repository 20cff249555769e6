"""POST /events requests every way of serving it must answer alike (the WSGI endpoint, the RSGI
app, the Flask view), and how to compare their answers: status, headers, body, what is published,
and the metrics counted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from flask import Flask
from werkzeug.test import TestResponse

from ingest_app import create_app
from ingest_app.publisher import OutgoingMessage
from sentinel import metrics
from tests.unit.conftest import FakePublisher

EVENT = {"event_id": "0c9a3d5e-1111-4222-8333-444455556666", "type": "tool_call", "session_id": "s-1"}
OTHER = {"event_id": "7d1e2f3a-5555-4666-8777-888899990000", "type": "tool_result", "session_id": "s-2"}
TOKEN = "t0ken"
# A streamed body, as a server that de-chunks it says: no Content-Length, the input ends on its own.
CHUNKED = {"CONTENT_LENGTH": None, "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}


class BrokenPublisher(FakePublisher):
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise RuntimeError("librdkafka exploded")


def ingest_app(recorder: str, publisher: FakePublisher, **config: Any) -> Flask:
    """The app with `recorder` recording the server span, publishing to `publisher`."""
    settings = {"TESTING": False, "SENTINEL_PUBLISHER": publisher, "SENTINEL_TOKENS": (), **config}
    return create_app({**settings, "SENTINEL_SERVER_SPAN": recorder})


# name -> (config, how the publisher behaves, method, path, request keyword arguments)
CASES: dict[str, tuple[dict[str, Any], str, str, str, dict[str, Any]]] = {
    "one event": ({}, "ok", "POST", "/events", {"json": EVENT}),
    "an array": ({}, "ok", "POST", "/events", {"json": [EVENT, OTHER]}),
    "ndjson": (
        {},
        "ok",
        "POST",
        "/events",
        {"data": orjson.dumps(EVENT) + b"\n" + orjson.dumps(OTHER), "content_type": "application/x-ndjson"},
    ),
    "invalid json": ({}, "ok", "POST", "/events", {"data": b"{not json", "content_type": "application/json"}),
    "invalid event": ({}, "ok", "POST", "/events", {"json": [EVENT, {"type": 7}]}),
    "no events": ({}, "ok", "POST", "/events", {"json": []}),
    "too many events": ({"SENTINEL_MAX_EVENTS": 2}, "ok", "POST", "/events", {"json": [EVENT] * 3}),
    "event too large": ({"SENTINEL_MAX_EVENT_BYTES": 40}, "ok", "POST", "/events", {"json": EVENT}),
    "body over the limit": ({"MAX_CONTENT_LENGTH": 16}, "ok", "POST", "/events", {"json": EVENT}),
    "no token": ({"SENTINEL_TOKENS": (TOKEN.encode(),)}, "ok", "POST", "/events", {"json": EVENT}),
    "a token": (
        {"SENTINEL_TOKENS": (TOKEN.encode(),)},
        "ok",
        "POST",
        "/events",
        {"json": EVENT, "headers": {"Authorization": f"Bearer {TOKEN}"}},
    ),
    "kafka unavailable": ({}, "unavailable", "POST", "/events", {"json": EVENT}),
    "unhandled error": ({}, "broken", "POST", "/events", {"json": EVENT}),
    "body cut short": (
        {},
        "ok",
        "POST",
        "/events",
        {
            "data": orjson.dumps(EVENT),
            "content_type": "application/json",
            "environ_overrides": {"CONTENT_LENGTH": "400"},
        },
    ),
    "chunked body": ({}, "ok", "POST", "/events", {"data": orjson.dumps(EVENT), "environ_overrides": CHUNKED}),
    "chunked body over the limit": (
        {"MAX_CONTENT_LENGTH": 32},
        "ok",
        "POST",
        "/events",
        {"data": orjson.dumps(EVENT), "environ_overrides": CHUNKED},
    ),
    "invalid Content-Length": (
        {},
        "ok",
        "POST",
        "/events",
        {"data": orjson.dumps(EVENT), "environ_overrides": {"CONTENT_LENGTH": "12abc"}},
    ),
    "GET /events": ({}, "ok", "GET", "/events", {}),
    "POST /events/": ({}, "ok", "POST", "/events/", {"json": EVENT}),
}


def case_publisher(case: str) -> FakePublisher:
    """The publisher `case` asks for: one that works, one Kafka refuses, or one that breaks."""
    behaviour = CASES[case][1]
    publisher = BrokenPublisher() if behaviour == "broken" else FakePublisher()
    publisher.fail = behaviour == "unavailable"
    return publisher


def answer_by_test_client(recorder: str, case: str) -> tuple[TestResponse, list[list[OutgoingMessage]], dict]:
    """Flask's test client's answer to `case` with `recorder` recording the server span, what was
    published, and the counters that moved."""
    config, _, method, path, kwargs = CASES[case]
    publisher = case_publisher(case)
    app = ingest_app(recorder, publisher, **config)
    before = counted()
    response = app.test_client().open(path, method=method, **kwargs)
    return response, publisher.batches, moved_since(before)


def moved_since(before: dict[str, float]) -> dict[str, float]:
    """How much each counter moved since `counted()` gave `before`."""
    after = counted()
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k)}


def counted() -> dict[str, float]:
    """Every ingest counter's samples in this process, by name and labels."""
    counters = (
        metrics.INGEST_REQUESTS,
        metrics.INGEST_EVENTS_ACCEPTED,
        metrics.INGEST_EVENTS_REJECTED,
        metrics.INGEST_PRODUCE_ERRORS,
    )
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for counter in counters
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def published(batches: list[list[OutgoingMessage]]) -> list[list[tuple[Any, ...]]]:
    """Each message's key, value and header names (the trace context differs: a new trace each)."""
    return [[(m.key, m.value, [name for name, _ in m.headers]) for m in batch] for batch in batches]


def headers_of(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers by lower-case name, without Content-Length (RSGI's server writes it)."""
    return {name.lower(): value for name, value in headers if name.lower() != "content-length"}

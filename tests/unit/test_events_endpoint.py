"""POST /events answered by `ingest_app.events_endpoint` (the default) gives what the Flask view
gives (served when the OTel Flask instrumentation records the server span): status, headers, body,
what is published, and the metrics counted. Requests other than POST /events are Flask's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, TestResponse

from ingest_app import create_app
from ingest_app.events_endpoint import EventsEndpoint
from ingest_app.publisher import OutgoingMessage
from sentinel import metrics
from tests.unit.conftest import FakePublisher

EVENT = {"event_id": "0c9a3d5e-1111-4222-8333-444455556666", "type": "tool_call", "session_id": "s-1"}
OTHER = {"event_id": "7d1e2f3a-5555-4666-8777-888899990000", "type": "tool_result", "session_id": "s-2"}
TOKEN = "t0ken"
# A streamed body, as a server that de-chunks it says: no Content-Length, the input ends on its own.
CHUNKED = {"CONTENT_LENGTH": None, "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}


class _BrokenPublisher(FakePublisher):
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise RuntimeError("librdkafka exploded")


def _app(recorder: str, publisher: FakePublisher, **config: Any) -> Flask:
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


def _answer(recorder: str, case: str) -> tuple[TestResponse, list[list[OutgoingMessage]], dict[str, float]]:
    config, behaviour, method, path, kwargs = CASES[case]
    publisher = _BrokenPublisher() if behaviour == "broken" else FakePublisher()
    publisher.fail = behaviour == "unavailable"
    app = _app(recorder, publisher, **config)
    before = _counted()
    response = app.test_client().open(path, method=method, **kwargs)
    after = _counted()
    return response, publisher.batches, {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k)}


def _counted() -> dict[str, float]:
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


def _published(batches: list[list[OutgoingMessage]]) -> list[list[tuple[Any, ...]]]:
    """Each message's key, value and header names (the trace context differs: a new trace each)."""
    return [[(m.key, m.value, [name for name, _ in m.headers]) for m in batch] for batch in batches]


def _headers(response: TestResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_endpoint_answers_as_the_flask_view(case: str) -> None:
    by_view, view_batches, view_counted = _answer("flask-instrumentation", case)
    by_endpoint, endpoint_batches, endpoint_counted = _answer("hooks", case)
    assert (by_endpoint.status, _headers(by_endpoint)) == (by_view.status, _headers(by_view))
    assert orjson.loads(by_endpoint.data) == orjson.loads(by_view.data)
    assert _published(endpoint_batches) == _published(view_batches)
    assert endpoint_counted == view_counted


@pytest.mark.parametrize(("recorder", "served_by"), [("hooks", "endpoint"), ("flask-instrumentation", "flask")])
def test_post_events_is_served_by_the_endpoint_unless_the_instrumentation_records(
    recorder: str, served_by: str
) -> None:
    app = _app(recorder, FakePublisher())
    assert isinstance(app.wsgi_app, EventsEndpoint) is (served_by == "endpoint")
    served: list[str] = []
    view = app.view_functions["ingest.post_events"]
    app.view_functions["ingest.post_events"] = lambda: served.append("flask") or view()
    client = app.test_client()
    assert client.post("/events", json=EVENT).status_code == 202
    assert served == ([] if served_by == "endpoint" else ["flask"])
    assert client.get("/healthz").status_code == 200


def test_an_unhandled_error_is_raised_in_testing_as_flask_does() -> None:
    app = _app("hooks", _BrokenPublisher(), TESTING=True)
    with pytest.raises(RuntimeError, match="librdkafka exploded"):
        app.test_client().post("/events", json=EVENT)


def test_what_the_servers_start_response_raises_is_not_turned_into_a_500() -> None:
    app = _app("hooks", FakePublisher())
    calls: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        calls.append(status)
        raise ConnectionError("client gone")

    environ = EnvironBuilder(path="/events", method="POST", json=EVENT).get_environ()
    with pytest.raises(ConnectionError):
        app.wsgi_app(environ, start_response)
    assert calls == ["202 ACCEPTED"]  # called once, with the answer; not again with a 500

"""POST /events on granian's event loop (`ingest_app.rsgi_app`) answers as the Flask view does,
with the same spans as the WSGI endpoint; every other request is the Flask app's, on its threads.

The scope and protocol here are stand-ins for granian's, built from the same requests the WSGI
tests send (`tests.unit.ingest_app.cases`); that `wsgi_environ` reads a scope as granian's WSGI
interface reads the request is tests/integration/test_rsgi_environ.py's, against granian itself.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import EnvironBuilder
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ingest_app import accept
from ingest_app.publisher import OutgoingMessage
from ingest_app.rsgi_app import IngestApp, call_wsgi, wsgi_environ
from tests.unit.conftest import FakePublisher
from tests.unit.ingest_app.cases import (
    CASES,
    CHUNKED,
    EVENT,
    BrokenPublisher,
    answer_by_test_client,
    case_publisher,
    counted,
    headers_of,
    ingest_app,
    moved_since,
    published,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class _Headers:
    """granian's RSGIHeaders: items() in arrival order, get() of the first value."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def get(self, key: str, default: Any = None) -> Any:
        return next((value for name, value in self._items if name == key), default)


class _Scope:
    def __init__(self, method: str, path: str, query_string: str, headers: list[tuple[str, str]]) -> None:
        self.proto = "http"
        self.http_version = "1.1"
        self.server = "127.0.0.1:8081"
        self.client = "127.0.0.1:40000"
        self.scheme = "http"
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = _Headers(headers)


class _Protocol:
    """granian's HTTP protocol: the body whole (`await proto()`) or in pieces (`async for`), and
    the one response."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.received = 0  # bytes of the body handed to the app so far
        self.response: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def __call__(self) -> bytes:
        self.received = len(self.body)
        return self.body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 7):
            self.received += len(self.body[start : start + 7])
            yield self.body[start : start + 7]

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        assert self.response is None, "answered twice"
        self.response = (status, headers, body)


def _request(app: Flask, method: str, path: str, kwargs: dict[str, Any]) -> tuple[_Scope, _Protocol]:
    """The scope and protocol granian gives for the request `app`'s test client would send."""
    environ = EnvironBuilder(app, path=path, method=method, **kwargs).get_environ()
    headers = [
        (key[5:].lower().replace("_", "-"), str(value))
        for key, value in environ.items()
        if key.startswith("HTTP_") and value is not None
    ]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key) not in (None, ""):
            headers.append((name, str(environ[key])))
    body = environ["wsgi.input"].read()
    return _Scope(method, path, environ.get("QUERY_STRING", ""), headers), _Protocol(body)


def _serve(app: IngestApp, scope: _Scope, proto: _Protocol) -> tuple[int, list[tuple[str, str]], bytes]:
    asyncio.run(app.__rsgi__(scope, proto))  # type: ignore[arg-type]
    assert proto.response is not None, "no response"
    return proto.response


def _answer_by_rsgi(case: str) -> tuple[tuple[int, list[tuple[str, str]], bytes], list[list[OutgoingMessage]], dict]:
    config, _, method, path, kwargs = CASES[case]
    publisher = case_publisher(case)
    flask_app = ingest_app("hooks", publisher, **config)
    before = counted()
    response = _serve(IngestApp(flask_app, threads=2), *_request(flask_app, method, path, kwargs))
    return response, publisher.batches, moved_since(before)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_rsgi_app_answers_as_the_flask_view(case: str) -> None:
    by_view, view_batches, view_counted = answer_by_test_client("flask-instrumentation", case)
    (status, headers, body), batches, rsgi_counted = _answer_by_rsgi(case)
    assert status == by_view.status_code
    assert headers_of(headers) == headers_of(by_view.headers.items())
    assert orjson.loads(body) == orjson.loads(by_view.data)
    assert published(batches) == published(view_batches)
    assert rsgi_counted == view_counted


@pytest.mark.parametrize(("recorder", "served_by"), [("hooks", "loop"), ("flask-instrumentation", "flask")])
def test_post_events_is_served_on_the_loop_unless_the_instrumentation_records(recorder: str, served_by: str) -> None:
    flask_app = ingest_app(recorder, FakePublisher())
    served: list[str] = []
    view = flask_app.view_functions["ingest.post_events"]
    flask_app.view_functions["ingest.post_events"] = lambda: served.append("flask") or view()
    if recorder == "hooks":  # the WSGI endpoint in front of Flask must not see it either
        endpoint = flask_app.wsgi_app
        flask_app.wsgi_app = lambda environ, start: served.append("endpoint") or endpoint(environ, start)  # type: ignore[method-assign]
    app = IngestApp(flask_app, threads=2)
    status, _, _ = _serve(app, *_request(flask_app, "POST", "/events", {"json": EVENT}))
    assert status == 202
    assert served == ([] if served_by == "loop" else ["flask"])
    status, _, body = _serve(app, *_request(flask_app, "GET", "/healthz", {}))
    assert (status, orjson.loads(body)) == (200, {"status": "ok"})


def test_flask_answers_on_the_apps_threads_not_on_the_loop() -> None:
    flask_app = ingest_app("hooks", FakePublisher())
    threads: list[str] = []
    view = flask_app.view_functions["ingest.healthz"]

    def healthz() -> Any:
        threads.append(threading.current_thread().name)
        return view()

    flask_app.view_functions["ingest.healthz"] = healthz
    _serve(IngestApp(flask_app, threads=2), *_request(flask_app, "GET", "/healthz", {}))
    assert len(threads) == 1 and threads[0].startswith("flask"), threads


@pytest.mark.parametrize("events", [1, 1_000])
def test_a_large_body_is_checked_on_a_thread_and_a_small_one_on_the_loop(
    events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked_on: list[str] = []
    check = accept.check_events

    def recorded(*args: Any) -> Any:
        checked_on.append(threading.current_thread().name)
        return check(*args)

    monkeypatch.setattr(accept, "check_events", recorded)
    publisher = FakePublisher()
    flask_app = ingest_app("hooks", publisher)
    body = [{**EVENT, "event_id": str(uuid.UUID(int=i)), "attributes": {"d": "x" * 64}} for i in range(events)]
    scope, proto = _request(flask_app, "POST", "/events", {"json": body})
    assert (len(proto.body) >= accept.OFFLOAD_BYTES) is (events > 1)
    status, _, _ = _serve(IngestApp(flask_app, threads=2), scope, proto)
    assert status == 202 and len(publisher.messages) == events
    on_loop = threading.main_thread().name  # asyncio.run's loop runs in this thread
    assert (checked_on == [on_loop]) is (events == 1), checked_on


def test_a_streamed_body_is_read_no_further_than_the_limit() -> None:
    flask_app = ingest_app("hooks", FakePublisher(), MAX_CONTENT_LENGTH=64)
    scope, proto = _request(flask_app, "POST", "/events", {"json": [EVENT] * 100, "environ_overrides": CHUNKED})
    status, _, body = _serve(IngestApp(flask_app, threads=2), scope, proto)
    assert (status, orjson.loads(body)["error"]) == (413, "body_too_large")
    assert 64 <= proto.received < 64 + 7, f"read {proto.received} of {len(proto.body)} bytes"


def test_a_path_that_is_not_utf8_is_answered_by_flask() -> None:
    # granian's RSGI path holds U+FFFD for `%ff`; WSGI's PATH_INFO must stay latin-1 text for Werkzeug.
    flask_app = ingest_app("hooks", FakePublisher())
    status, _, body = _serve(IngestApp(flask_app, threads=2), _Scope("POST", "/\ufffd", "", []), _Protocol(b"{}"))
    assert (status, orjson.loads(body)["error"]) == (404, "not_found")


def test_an_unhandled_error_is_raised_in_testing_as_flask_does() -> None:
    flask_app = ingest_app("hooks", BrokenPublisher(), TESTING=True)
    with pytest.raises(RuntimeError, match="librdkafka exploded"):
        _serve(IngestApp(flask_app, threads=2), *_request(flask_app, "POST", "/events", {"json": EVENT}))


def test_the_spans_are_the_wsgi_endpoints(spans: InMemorySpanExporter) -> None:
    """Names, kinds, parents, attributes and status of what one traced request records."""
    kwargs = {"json": EVENT, "headers": {"traceparent": TRACEPARENT, "User-Agent": "mcp-proxy/1.0"}}

    def recorded(serve: Any) -> list[tuple[Any, ...]]:
        spans.clear()
        serve()
        finished: list[ReadableSpan] = sorted(spans.get_finished_spans(), key=lambda s: s.name)
        ids = {span.context.span_id: span.name for span in finished}
        return [
            (
                span.name,
                span.kind,
                span.context.trace_id,
                ids.get(span.parent.span_id, span.parent.span_id) if span.parent else None,
                {k: v for k, v in (span.attributes or {}).items() if k != "messaging.message.id"},
                span.status.status_code,
            )
            for span in finished
        ]

    flask_app = ingest_app("hooks", FakePublisher())
    # The WSGI endpoint, served as granian's WSGI interface would: the environ `wsgi_environ` gives.
    scope, proto = _request(flask_app, "POST", "/events", kwargs)
    by_wsgi = recorded(lambda: call_wsgi(flask_app, wsgi_environ(scope, proto.body)))  # type: ignore[arg-type]
    by_rsgi = recorded(lambda: _serve(IngestApp(flask_app, threads=2), *_request(flask_app, "POST", "/events", kwargs)))
    assert [span[0] for span in by_rsgi] == ["POST /events", "send mcp.events"]
    assert by_rsgi == by_wsgi
    assert by_rsgi[0][2] == int(TRACEPARENT.split("-")[1], 16)  # the caller's trace goes on

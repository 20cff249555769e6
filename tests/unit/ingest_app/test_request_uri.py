"""ingest_app.request_uri: the request target granian leaves out, as the instrumentation reads it."""

from __future__ import annotations

import io
import sys
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ingest_app import create_app
from ingest_app.request_uri import request_target, with_request_uri
from tests.unit.conftest import FakePublisher


def _environ(path: str, query: str = "", **extra: Any) -> dict[str, Any]:
    body = b'{"type":"a"}'
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8081",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **extra,
    }


def test_the_target_is_path_and_query() -> None:
    assert request_target(_environ("/events")) == "/events"
    assert request_target(_environ("/events", "a=1&b=2")) == "/events?a=1&b=2"
    assert request_target(_environ("/events", SCRIPT_NAME="/ingest")) == "/ingest/events"


def test_a_path_that_needs_encoding_is_percent_encoded() -> None:
    # PEP 3333: PATH_INFO holds the decoded bytes as latin-1 characters.
    assert request_target(_environ("/ev ents/\r\n")) == "/ev%20ents/%0D%0A"
    assert request_target(_environ("/caf\xc3\xa9")) == "/caf%C3%A9"


def test_a_target_set_by_the_server_is_kept() -> None:
    seen: list[dict[str, Any]] = []
    app = with_request_uri(lambda environ, start_response: seen.append(environ) or [])
    app(_environ("/events", RAW_URI="/events?raw=1"), lambda *a: None)
    app(_environ("/events"), lambda *a: None)
    assert "REQUEST_URI" not in seen[0]
    assert seen[1]["REQUEST_URI"] == "/events"


def test_the_server_span_records_the_target_when_the_server_gave_none(
    publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    app = create_app(
        {"TESTING": True, "SENTINEL_PUBLISHER": publisher, "SENTINEL_SERVER_SPAN": "flask-instrumentation"}
    )
    statuses: list[str] = []
    body = b"".join(app(_environ("/events", "src=proxy"), lambda status, headers, *a: statuses.append(status)))
    assert statuses == ["202 ACCEPTED"], body
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 1
    assert servers[0].attributes["http.target"] == "/events?src=proxy"
    assert servers[0].attributes["http.method"] == "POST"

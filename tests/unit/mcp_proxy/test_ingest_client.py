"""What each of ingest's answers means for a batch, and the POST itself."""

from __future__ import annotations

import socket

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mcp_proxy.ingest_client import IngestClient, Verdict, classify
from sentinel import semconv
from tests.unit.mcp_proxy.fake_ingest import fake_ingest


@pytest.mark.parametrize(
    ("status", "payload", "verdict", "reason"),
    [
        (202, {"accepted": 2, "event_ids": ["a", "b"]}, Verdict.ACCEPTED, "accepted"),
        (503, {"error": "kafka_unavailable"}, Verdict.RETRY, "http_503"),
        (503, {"error": "ingest_unavailable"}, Verdict.RETRY, "http_503"),
        (500, {}, Verdict.RETRY, "http_500"),
        (408, {"error": "body_timeout"}, Verdict.RETRY, "body_timeout"),
        (429, {}, Verdict.RETRY, "http_429"),
        (413, {"error": "body_too_large"}, Verdict.SPLIT, "body_too_large"),
        (413, {"error": "too_many_events"}, Verdict.SPLIT, "too_many_events"),
        (413, {"error": "event_too_large", "index": 3}, Verdict.DROP_ONE, "event_too_large"),
        (400, {"error": "invalid_event", "index": 0, "field": "type"}, Verdict.DROP_ONE, "invalid_event"),
        (400, {"error": "invalid_json"}, Verdict.DROP, "invalid_json"),
        (401, {"error": "unauthorized"}, Verdict.RETRY, "unauthorized"),
        (403, {}, Verdict.RETRY, "http_403"),
        (404, {"error": "not found, from some other server"}, Verdict.DROP, "http_404"),
        (307, {}, Verdict.RETRY, "http_307"),
    ],
)
def test_answers(status: int, payload: dict[str, object], verdict: Verdict, reason: str) -> None:
    answer = classify(status, payload, {"Retry-After": "5"})
    assert (answer.verdict, answer.reason) == (verdict, reason)
    if verdict is Verdict.RETRY:
        assert answer.retry_after_s == 5.0


def test_a_boolean_index_names_no_event() -> None:
    assert classify(400, {"error": "invalid_event", "index": True}, {}).verdict is Verdict.DROP


def test_posts_ndjson_with_the_token_under_a_root_client_span(spans: InMemorySpanExporter) -> None:
    with fake_ingest() as ingest:
        client = IngestClient(ingest.url, "s3cret", connect_timeout_s=1, timeout_s=5)
        lines = [orjson.dumps({"type": "tool_call", "event_id": str(n)}) for n in range(3)]
        assert client.post(lines).verdict is Verdict.ACCEPTED
        client.close()
    assert ingest.requests == [[orjson.loads(line) for line in lines]]
    headers = ingest.headers[0]
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/x-ndjson"
    (span,) = spans.get_finished_spans()
    assert (span.name, span.kind, span.parent) == ("POST", SpanKind.CLIENT, None)
    assert span.attributes[semconv.BATCH_EVENTS] == 3
    assert span.attributes[semconv.HTTP_STATUS_CODE] == 202
    assert headers["traceparent"].split("-")[1] == f"{span.context.trace_id:032x}"


def test_a_dead_port_is_a_retry_not_an_exception() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = IngestClient(f"http://127.0.0.1:{port}", None, connect_timeout_s=1, timeout_s=1)
    answer = client.post([b"{}"])
    assert (answer.verdict, answer.reason) == (Verdict.RETRY, "connection_error")

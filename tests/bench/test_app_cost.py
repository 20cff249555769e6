"""bench.app_cost: the app is measured on requests ingest accepted."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from bench import app_cost
from sentinel import semconv


def test_the_app_serves_accepted_requests_and_records_their_spans(spans: InMemorySpanExporter) -> None:
    result = app_cost.measure(threads=2, seconds=0.2, ack_s=0.001)
    assert result["requests_per_s"] > 0 and result["cpu_us_per_request"] > 0
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert servers and {s.name for s in servers} == {semconv.SPAN_INGEST}


def test_a_refused_request_stops_the_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_cost, "_BODY", "{not json")  # the single-event body
    with pytest.raises(RuntimeError, match="400"):
        app_cost.measure(threads=1, seconds=0.1, ack_s=0.0)

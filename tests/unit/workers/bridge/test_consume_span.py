"""workers.bridge.consume_span: a `kafka.consume` span per run, started by the SDK's tracer under
the context in the message's headers, and the context each event of the run carries on."""

from __future__ import annotations

import pytest
from confluent_kafka import Message
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel import semconv
from workers.bridge import consume_span
from workers.bridge.consume_span import ConsumeSpan, scan_headers

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-00f067aa0ba902b7"


def _consume_span(traceparent: str | None, tracestate: str | None = None) -> ConsumeSpan:
    headers = [] if traceparent is None else [(semconv.HEADER_TRACEPARENT, traceparent.encode())]
    if tracestate is not None:
        headers.append((semconv.HEADER_TRACESTATE, tracestate.encode()))
    message = Message(topic="mcp.events", partition=0, offset=7, headers=headers, value=b"{}")
    return ConsumeSpan(message, headers, scan_headers(headers), "sentinel-bridge")


def test_a_sampled_parent_gets_a_recorded_child(spans: InMemorySpanExporter) -> None:
    run = _consume_span(f"{PARENT}-01", "vendor=a")
    run.add(7, "id-7")
    run.end()
    (recorded,) = spans.get_finished_spans()
    assert recorded.name == semconv.SPAN_CONSUME and recorded.kind is trace.SpanKind.CONSUMER
    assert recorded.parent is not None and recorded.parent.span_id == 0x00F067AA0BA902B7
    assert recorded.attributes[semconv.MESSAGING_KAFKA_OFFSET] == 7
    assert recorded.attributes[semconv.MESSAGING_MESSAGE_ID] == "id-7"
    assert run.traceparent == f"00-{TRACE}-{recorded.context.span_id:016x}-01"
    assert run.tracestate == "vendor=a"


@pytest.mark.parametrize("tracestate", [None, "vendor=a,other=b"])
def test_an_unsampled_parent_records_nothing_and_its_trace_goes_on(
    tracestate: str | None, spans: InMemorySpanExporter
) -> None:
    run = _consume_span(f"{PARENT}-00", tracestate)
    run.end()
    assert spans.get_finished_spans() == ()
    assert run.traceparent.startswith(f"00-{TRACE}-") and run.traceparent.endswith("-00")
    assert run.tracestate == (tracestate or "")
    assert not run.malformed


def test_no_context_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    run = _consume_span(None)
    run.end()
    (recorded,) = spans.get_finished_spans()
    assert recorded.parent is None
    assert not run.malformed


def test_a_malformed_traceparent_starts_a_new_trace_and_is_counted(spans: InMemorySpanExporter) -> None:
    run = _consume_span("garbage")
    run.end()
    (recorded,) = spans.get_finished_spans()
    assert recorded.parent is None
    assert run.malformed


def test_with_tracing_off_the_carried_context_passes_unchanged(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consume_span, "tracer", trace.NoOpTracer)
    run = _consume_span(f"{PARENT}-01", "vendor=a")
    run.end()
    assert (run.traceparent, run.tracestate) == (f"{PARENT}-01", "vendor=a")
    assert spans.get_finished_spans() == ()

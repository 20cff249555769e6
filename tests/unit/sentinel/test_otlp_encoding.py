"""sentinel.otlp_encoding: the same OTLP request as the exporter's own encoder, byte for meaning."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from sentinel.otlp_encoding import encode_spans

REMOTE = SpanContext(
    0x4BF92F3577B34DA6A3CE929D0E0E4736,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(1),
    trace_state=TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")]),
)


def _spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "ingest", "deployment.environment": "test"}, "https://schema/1"),
        span_limits=SpanLimits(max_attributes=8, max_links=3, max_events=2),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sentinel", "1.0", schema_url="https://schema/2")
    other = provider.get_tracer("opentelemetry.instrumentation.flask")
    remote = set_span_in_context(NonRecordingSpan(REMOTE))

    with other.start_as_current_span(
        "POST /events",
        context=remote,
        kind=SpanKind.SERVER,
        attributes={"http.method": "POST", "http.status_code": 202, "net.peer.port": 50123},
    ) as server:
        with tracer.start_as_current_span(
            "send mcp.events", kind=SpanKind.PRODUCER, attributes={"messaging.system": "kafka"}
        ):
            pass
        server.add_event("note", {"k": "v", "n": -3})
        server.add_event("")
    tracer.start_span(
        "types",
        attributes={
            "s": "",
            "s2": "ünïcødé",
            "b": False,
            "b2": True,
            "i": 0,
            "neg": -(2**63),
            "big": 2**63 - 1,
            "f": 0.0,
            "f2": -1.5e300,
            "list": ["a", ""],
            "ints": [1, -2],
            "bools": [True, False],
            "floats": [1.5],
            "empty": [],
            "over": "the limit",  # the ninth attribute: dropped by SpanLimits
        },
    ).end()
    links = [
        Link(REMOTE, {"messaging.message.id": "e-1", "messaging.kafka.offset": 7}),
        Link(SpanContext(1, 2, is_remote=False), {}),
        Link(SpanContext(3, 4, is_remote=True), {"messaging.batch.message_count": 100}),
        Link(SpanContext(5, 6, is_remote=True)),  # the fourth: dropped by SpanLimits
    ]
    with tracer.start_as_current_span("clickhouse.insert_batch", kind=SpanKind.CLIENT, links=links) as insert:
        insert.set_status(Status(StatusCode.ERROR, "insert refused"))
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            insert.record_exception(exc)
    with tracer.start_as_current_span("ok", kind=SpanKind.CONSUMER, context=remote) as ok:
        ok.set_status(Status(StatusCode.OK))
        for i in range(3):
            ok.add_event(f"e{i}")  # one beyond max_events
    tracer.start_span("internal").end()
    return list(exporter.get_finished_spans())


def test_the_request_parses_to_what_the_exporters_encoder_builds() -> None:
    spans = _spans()
    assert any(s.dropped_attributes for s in spans) and any(s.dropped_links for s in spans)
    assert any(s.dropped_events for s in spans)
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == reference_encode(spans)


def test_cached_attributes_come_out_the_same_the_second_time() -> None:
    spans = _spans()
    assert encode_spans(spans) == encode_spans(spans)
    assert ExportTraceServiceRequest.FromString(encode_spans(spans)) == reference_encode(spans)


def test_an_integer_outside_int64_is_left_out_like_the_exporter_does(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s", attributes={"huge": 2**64, "kept": 1}).end()
    spans = list(exporter.get_finished_spans())
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    (span,) = ours.resource_spans[0].scope_spans[0].spans
    assert [kv.key for kv in span.attributes] == ["kept"]
    assert "huge" in caplog.text


def test_the_exporter_posts_the_encoded_request() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry.sdk.trace.export import SpanExportResult

    from sentinel.otlp_encoding import DirectEncodingSpanExporter

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        exporter = DirectEncodingSpanExporter(endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces")
        spans = _spans()
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        exporter.shutdown()
    finally:
        server.shutdown()
    ((path, content_type, body),) = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert ExportTraceServiceRequest.FromString(body) == reference_encode(spans)

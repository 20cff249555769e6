"""Real Jaeger: a span exported over OTLP comes back from the query API by its trace id."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from sentinel import settings
from sentinel_cli.jaeger import JaegerClient


def test_span_round_trip_through_otlp_and_query_api() -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "sentinel-jaeger-test"}))
    endpoint = f"http://{settings.HOST}:{settings.JAEGER_OTLP_HTTP_PORT}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    with provider.get_tracer("test").start_as_current_span("jaeger-round-trip", attributes={"probe": "yes"}) as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()

    spans = JaegerClient().wait_for(trace_id, {"jaeger-round-trip"}, timeout_s=30)
    assert [s.name for s in spans] == ["jaeger-round-trip"]
    assert spans[0].service == "sentinel-jaeger-test"
    assert spans[0].tags["probe"] == "yes"

"""OpenTelemetry set-up, once per process, from the SDK's own `OTEL_*` variables.

Nothing here re-invents configuration: the sampler comes from `OTEL_TRACES_SAMPLER(_ARG)`, the
endpoint from `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`, `OTEL_SDK_DISABLED=true` turns tracing off,
`OTEL_TRACES_EXPORTER=none` records without exporting. Only the service name is ours to give.
Celery prefork workers call this from `worker_process_init`, never at import (the exporter's
thread would not survive the fork).
"""

from __future__ import annotations

import atexit
import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from sentinel import settings

log = logging.getLogger(__name__)
_configured_for: str | None = None

TRACER_NAME = "sentinel"


def _exporter() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    # OTLP/HTTP with an encoder ~4x cheaper per span than the exporter's own (sentinel/otlp_encoding.py).
    from sentinel.otlp_encoding import DirectEncodingSpanExporter

    return DirectEncodingSpanExporter()


def span_limits() -> SpanLimits:
    """Default limits, except that a span may hold one link per event of the largest chunk.

    The SDK keeps 128 links by default and drops the rest silently; the insert span links
    every event of its chunk, so the limit follows the chunk size unless set higher.
    """
    configured = int(os.environ.get("OTEL_SPAN_LINK_COUNT_LIMIT", "128"))
    return SpanLimits(max_links=max(configured, settings.CHUNK_MAX_EVENTS))


def setup_tracing(
    service_name: str, *, exporter: SpanExporter | None = None, span_processor: SpanProcessor | None = None
) -> trace.TracerProvider:
    """Install the global tracer provider for this process; later calls return the first one.

    `exporter` replaces the OTLP exporter (batched); `span_processor` replaces both, for tests
    that need spans synchronously.
    """
    global _configured_for
    if _configured_for:
        return trace.get_tracer_provider()
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        _configured_for = service_name
        return trace.get_tracer_provider()
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource, span_limits=span_limits())
    if span_processor is not None:
        provider.add_span_processor(span_processor)
    else:
        chosen = exporter if exporter is not None else _exporter()
        if chosen is not None:
            provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    _configured_for = service_name
    log.debug("tracing set up for %s", service_name)
    return provider


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    """Sentinel's tracer. Built once: `trace.get_tracer` per span was a tenth of the bridge's CPU.
    Before setup_tracing this is the API's proxy, which follows the provider once one is set."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer


def tracing_enabled() -> bool:
    """Whether spans are recorded in this process (an SDK provider is installed). When not, the
    API's no-op tracer passes every carried context through unchanged, and work done only to
    describe spans (attributes, links) can be skipped."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)

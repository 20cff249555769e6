"""OpenTelemetry set-up, once per process, from the SDK's own `OTEL_*` variables.

Built from the SDK's public classes, each of which reads its own variables as the specification
says: the sampler (`OTEL_TRACES_SAMPLER`, `_ARG`) and `OTEL_SDK_DISABLED` in `TracerProvider`, the
span limits in `SpanLimits`, the resource in `OTELResourceDetector`, endpoints, headers and
timeouts in each exporter. What is left here is what the SDK leaves to a configurator:
`OTEL_TRACES_EXPORTER` (a comma-separated list of exporter names, resolved through the
`opentelemetry_traces_exporter` entry points as the SDK's auto-instrumentation does; `none` for
none) and the OTLP protocol (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`,
else `http/protobuf`). An unknown exporter or a protocol no installed exporter speaks is an error
at start, naming the value.

opentelemetry-distro's configurator is not used: it also installs meter and logger providers,
and it takes neither the span limits below nor a test's span processor.

Two defaults are Sentinel's, each overridden by the environment: the service name (the process's
own, unless `OTEL_SERVICE_NAME` or `service.name` in `OTEL_RESOURCE_ATTRIBUTES` says otherwise) and
the link limit (one link per event of the largest chunk, unless `OTEL_SPAN_LINK_COUNT_LIMIT` is
set). Celery prefork workers call `setup_tracing` from `worker_process_init`, never at import (the
exporter's thread would not survive the fork).
"""

from __future__ import annotations

import atexit
import logging
import os
from importlib.metadata import entry_points

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
    OTEL_SPAN_LINK_COUNT_LIMIT,
)
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from sentinel import settings

log = logging.getLogger(__name__)

TRACER_NAME = "sentinel"
EXPORTER_ENTRY_POINTS = "opentelemetry_traces_exporter"
DEFAULT_PROTOCOL = "http/protobuf"
# The entry point of the OTLP exporter for each protocol of the specification.
OTLP_EXPORTER_BY_PROTOCOL = {
    "grpc": "otlp_proto_grpc",
    "http/protobuf": "otlp_proto_http",
    "http/json": "otlp_json_http",
}

_provider: trace.TracerProvider | None = None
_limits: SpanLimits | None = None


class TracingConfigurationError(RuntimeError):
    """An `OTEL_*` variable names something this installation cannot provide."""


def _env(name: str) -> str:
    # The specification reads an empty value as an unset one.
    return os.environ.get(name, "").strip()


def sdk_disabled() -> bool:
    """`OTEL_SDK_DISABLED`, read as the SDK's TracerProvider reads it."""
    return _env(OTEL_SDK_DISABLED).lower() == "true"


def otlp_protocol() -> str:
    """The OTLP protocol for traces: the signal's own variable, then the general one."""
    return _env(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) or _env(OTEL_EXPORTER_OTLP_PROTOCOL) or DEFAULT_PROTOCOL


def exporter_names() -> list[str]:
    """The entry-point names `OTEL_TRACES_EXPORTER` asks for (default `otlp`, `none` for none),
    with `otlp` resolved to the exporter of the configured protocol. Raises
    TracingConfigurationError for a protocol that is not one of the specification's."""
    names = [name.strip() for name in (_env(OTEL_TRACES_EXPORTER) or "otlp").split(",") if name.strip()]
    resolved = []
    for name in names:
        if name.lower() == "none":
            continue
        if name == "otlp":
            protocol = otlp_protocol()
            if protocol not in OTLP_EXPORTER_BY_PROTOCOL:
                raise TracingConfigurationError(
                    f"OTLP protocol {protocol!r} is not supported; use one of {', '.join(OTLP_EXPORTER_BY_PROTOCOL)}"
                )
            name = OTLP_EXPORTER_BY_PROTOCOL[protocol]
        resolved.append(name)
    return resolved


def exporters() -> list[SpanExporter]:
    """One exporter per name of `exporter_names()`, built with the exporter's own env defaults.
    Raises TracingConfigurationError for a name that no installed package provides."""
    available = {ep.name: ep for ep in entry_points(group=EXPORTER_ENTRY_POINTS)}
    built = []
    for name in exporter_names():
        if name not in available:
            raise TracingConfigurationError(_missing_exporter(name, sorted(available)))
        built.append(available[name].load()())
    return built


def _missing_exporter(name: str, available: list[str]) -> str:
    for protocol, entry_point in OTLP_EXPORTER_BY_PROTOCOL.items():
        if name == entry_point:
            return f"OTLP protocol {protocol!r} is not supported by the installed exporters (no {name!r} exporter)"
    return f"OTEL_TRACES_EXPORTER names {name!r}, which is not an installed trace exporter ({', '.join(available)})"


def resource(service_name: str) -> Resource:
    """The SDK's resource with `service_name` as the default service name: `OTEL_SERVICE_NAME`, then
    `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, win over it."""
    return Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())


def span_limits_from_env() -> SpanLimits:
    """The SDK's limits, read from the environment, except that without
    `OTEL_SPAN_LINK_COUNT_LIMIT` a span may hold one link per event of the largest chunk (the SDK's
    default keeps 128 and drops the rest). Whatever the limit, the insert span carries the links
    beyond it on child spans (workers/clickhouse/writer.py)."""
    if OTEL_SPAN_LINK_COUNT_LIMIT in os.environ:
        return SpanLimits()
    return SpanLimits(max_links=settings.CHUNK_MAX_EVENTS)


def span_limits() -> SpanLimits:
    """The limits of this process's spans: the installed provider's, or the environment's before
    setup_tracing."""
    return _limits if _limits is not None else span_limits_from_env()


def tracer_provider(service_name: str, *, span_processor: SpanProcessor | None = None) -> TracerProvider | None:
    """The tracer provider the environment describes for `service_name`, not yet installed; None
    with `OTEL_SDK_DISABLED=true`. `span_processor` replaces the batched exporters. Raises
    TracingConfigurationError when `OTEL_TRACES_EXPORTER` or the OTLP protocol names something
    this installation cannot provide."""
    if sdk_disabled():
        return None
    processors = [span_processor] if span_processor is not None else [BatchSpanProcessor(e) for e in exporters()]
    provider = TracerProvider(resource=resource(service_name), span_limits=span_limits_from_env())
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def setup_tracing(service_name: str, *, span_processor: SpanProcessor | None = None) -> trace.TracerProvider:
    """Install `tracer_provider(service_name, span_processor=...)` as this process's global tracer
    provider; later calls return the first one. With `OTEL_SDK_DISABLED=true` the API's no-op
    provider stays. Raises what `tracer_provider` raises, before anything is installed."""
    global _provider, _limits
    if _provider is not None:
        return _provider
    provider = tracer_provider(service_name, span_processor=span_processor)
    if provider is None:
        _provider = trace.get_tracer_provider()
        return _provider
    # What span_limits() answers from now on: the limits this provider was built with.
    _limits = span_limits_from_env()
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    _provider = provider
    log.debug("tracing set up for %s", service_name)
    return provider


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    """Sentinel's tracer, built once (the SDK builds a new Tracer on every `get_tracer`). Before
    setup_tracing this is the API's proxy, which follows the provider once one is set."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer

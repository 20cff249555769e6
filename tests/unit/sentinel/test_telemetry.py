"""sentinel.telemetry: the tracer provider each process installs, from the SDK's `OTEL_*` variables
as the specification reads them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonHttpExporter
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel import settings, telemetry

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def built() -> Iterator[list[SpanExporter]]:
    """Exporters a test builds, shut down after it."""
    made: list[SpanExporter] = []
    yield made
    for exporter in made:
        exporter.shutdown()


def _exporters(built: list[SpanExporter]) -> list[type]:
    built.extend(telemetry.exporters())
    return [type(e) for e in built]


def _provider(exporter: InMemorySpanExporter | None = None) -> TracerProvider:
    provider = telemetry.tracer_provider(
        "sentinel-test", span_processor=SimpleSpanProcessor(exporter or InMemorySpanExporter())
    )
    assert provider is not None
    return provider


def test_the_default_exporter_is_otlp_over_http_protobuf(built: list[SpanExporter]) -> None:
    assert _exporters(built) == [HttpExporter]


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_exporter_list_reads_as_unset(value: str, monkeypatch: pytest.MonkeyPatch, built: list) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    assert _exporters(built) == [HttpExporter]


def test_every_listed_exporter_is_built(monkeypatch: pytest.MonkeyPatch, built: list[SpanExporter]) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console")
    assert _exporters(built) == [HttpExporter, ConsoleSpanExporter]


def test_none_builds_no_exporter(monkeypatch: pytest.MonkeyPatch, built: list[SpanExporter]) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert _exporters(built) == []


def test_an_unknown_exporter_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,zipkin_json")
    with pytest.raises(telemetry.TracingConfigurationError, match="'zipkin_json'"):
        telemetry.exporters()


@pytest.mark.parametrize(
    ("protocol", "exporter"),
    [("grpc", GrpcExporter), ("http/protobuf", HttpExporter), ("http/json", JsonHttpExporter)],
)
def test_each_otlp_protocol_gets_its_exporter(
    protocol: str, exporter: type, monkeypatch: pytest.MonkeyPatch, built: list[SpanExporter]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    assert _exporters(built) == [exporter]


def test_the_traces_protocol_wins_over_the_general_one(monkeypatch: pytest.MonkeyPatch, built: list) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    assert _exporters(built) == [JsonHttpExporter]


def test_an_empty_traces_protocol_reads_as_unset(monkeypatch: pytest.MonkeyPatch, built: list) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "")
    assert _exporters(built) == [GrpcExporter]


def test_a_protocol_outside_the_specification_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml")
    with pytest.raises(telemetry.TracingConfigurationError, match="'http/xml'"):
        telemetry.exporters()


def test_a_protocol_no_installed_exporter_speaks_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = telemetry.entry_points
    without_json = [ep for ep in real(group=telemetry.EXPORTER_ENTRY_POINTS) if ep.name != "otlp_json_http"]
    monkeypatch.setattr(telemetry, "entry_points", lambda group: without_json)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(telemetry.TracingConfigurationError, match="'http/json' is not supported by the installed"):
        telemetry.exporters()


def test_the_configuration_error_comes_before_a_provider_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "nonesuch")
    with pytest.raises(telemetry.TracingConfigurationError, match="'nonesuch'"):
        telemetry.tracer_provider("sentinel-test")


def test_the_process_names_the_service_by_default() -> None:
    assert telemetry.resource("sentinel-bridge").attributes[SERVICE_NAME] == "sentinel-bridge"


def test_service_name_in_resource_attributes_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=audit-eu,deployment.environment=prod")
    attributes = telemetry.resource("sentinel-bridge").attributes
    assert attributes[SERVICE_NAME] == "audit-eu"
    assert attributes["deployment.environment"] == "prod"


def test_otel_service_name_wins_over_resource_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=audit-eu")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "audit-us")
    assert telemetry.resource("sentinel-bridge").attributes[SERVICE_NAME] == "audit-us"


def test_an_empty_service_name_reads_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "")
    assert telemetry.resource("sentinel-bridge").attributes[SERVICE_NAME] == "sentinel-bridge"


@pytest.mark.parametrize("value", ["true", " TRUE "])
def test_sdk_disabled_builds_no_provider(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    assert telemetry.tracer_provider("sentinel-test") is None


@pytest.mark.parametrize("value", ["", "false", "1"])
def test_sdk_disabled_is_only_true(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    assert not telemetry.sdk_disabled()


def test_the_default_sampler_is_parent_based_always_on() -> None:
    assert _provider().sampler.get_description().startswith("ParentBased{root:AlwaysOnSampler")


def test_the_sampler_and_its_argument_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    assert "TraceIdRatioBased{0.25}" in _provider().sampler.get_description()


def test_always_off_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    _provider(exporter).get_tracer("t").start_span("s").end()
    assert exporter.get_finished_spans() == ()


def test_an_empty_sampler_argument_reads_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "")
    assert _provider().sampler.get_description() == "TraceIdRatioBased{1.0}"


def test_without_a_link_limit_a_span_holds_a_link_per_event_of_the_largest_chunk() -> None:
    assert telemetry.span_limits_from_env().max_links == settings.CHUNK_MAX_EVENTS


def test_a_configured_link_limit_is_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "7")
    assert telemetry.span_limits_from_env().max_links == 7


def test_an_empty_link_limit_reads_as_the_sdk_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "")
    # The SDK reads an empty limit as no limit.
    assert telemetry.span_limits_from_env().max_links is None


def test_the_attribute_count_limit_applies_above_sixteen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "20")
    exporter = InMemorySpanExporter()
    span = _provider(exporter).get_tracer("t").start_span("s", attributes={f"a{i}": i for i in range(30)})
    span.end()
    (finished,) = exporter.get_finished_spans()
    assert len(finished.attributes) == 20
    assert finished.dropped_attributes == 10


def test_the_default_attribute_limit_is_the_sdks() -> None:
    exporter = InMemorySpanExporter()
    _provider(exporter).get_tracer("t").start_span("s", attributes={f"a{i}": i for i in range(200)}).end()
    (finished,) = exporter.get_finished_spans()
    assert len(finished.attributes) == 128


def test_a_bad_attribute_costs_only_itself() -> None:
    exporter = InMemorySpanExporter()
    tracer = _provider(exporter).get_tracer("t")
    event_id = uuid.uuid4()
    span = tracer.start_span("s", attributes={"ok": 1, "uuid": event_id})  # type: ignore[dict-item]
    span.set_attribute(3, "a key that is not a string")  # type: ignore[arg-type]
    span.set_attribute("when", object())  # type: ignore[arg-type]
    span.end()
    tracer.start_span("other", attributes={"fine": "yes"}).end()
    bad, other = exporter.get_finished_spans()
    # The SDK's validation: a value of another type is kept as its string, a key that is not a
    # string is dropped; the span's other attributes stay.
    assert bad.attributes["ok"] == 1
    assert bad.attributes["uuid"] == str(event_id)
    assert 3 not in bad.attributes
    assert dict(other.attributes) == {"fine": "yes"}
    # The batch holding both still encodes for export.
    assert len(encode_spans([bad, other]).resource_spans[0].scope_spans[0].spans) == 2

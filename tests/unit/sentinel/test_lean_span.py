"""sentinel.lean_span records the span the SDK's tracer would, for the same inputs.

Both paths run on the test process's SDK provider with the same id sequence and sampler; the
exported spans are compared as OTLP bytes (sentinel.otlp_encoding), with only their start and end
times set equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sentinel import lean_span, semconv
from sentinel.otlp_encoding import encode_spans
from sentinel.telemetry import TRACER_NAME

SAMPLED_BY_HALF = 0x0123456789ABCDEF_0000000000000001  # low 64 bits under half the range
DROPPED_BY_HALF = 0x0123456789ABCDEF_F000000000000001
ATTRIBUTES = {
    semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_KAFKA,
    semconv.MESSAGING_OPERATION_NAME: "send",
    semconv.MESSAGING_BATCH_MESSAGE_COUNT: 3,
    "bench.ratio": 0.5,
    "bench.flag": True,
}


class FixedIds(IdGenerator):
    """The same ids for both paths: the next trace id and span ids 1, 2, 3, ..."""

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        self.span_id += 1
        return self.span_id


@pytest.fixture
def provider() -> TracerProvider:
    installed = trace.get_tracer_provider()
    assert isinstance(installed, TracerProvider), "tests/conftest.py installs the SDK provider"
    return installed


@pytest.fixture
def configure(provider: TracerProvider, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def _configure(sampler: Sampler, trace_id: int) -> None:
        # The provider keeps one tracer per scope, made with its sampler and id generator then:
        # both paths use that tracer, so it is the one to configure.
        sdk_tracer = provider.get_tracer(TRACER_NAME)
        monkeypatch.setattr(sdk_tracer, "sampler", sampler)
        monkeypatch.setattr(sdk_tracer, "id_generator", FixedIds(trace_id))
        monkeypatch.setattr(lean_span, "_sdk", None)

    return _configure  # monkeypatch puts the tracer and lean_span's cache back after the test


def _both(
    provider: TracerProvider, start: Callable[[Callable[..., trace.Span]], trace.Span]
) -> tuple[trace.Span, trace.Span]:
    """`start` run once with the SDK tracer's start_span and once with lean_span's, from span id 1."""
    sdk_tracer = provider.get_tracer(TRACER_NAME)
    ids = sdk_tracer.id_generator
    assert isinstance(ids, FixedIds)
    ids.span_id = 0
    by_sdk = start(sdk_tracer.start_span)
    ids.span_id = 0
    by_lean = start(
        lambda name, context=None, kind=SpanKind.INTERNAL, attributes=None: lean_span.start_span(
            name, kind=kind, attributes=dict(attributes or {}), context=context
        )
    )
    return by_sdk, by_lean


def _exported_bytes(span: ReadableSpan) -> bytes:
    span._start_time, span._end_time = 1_000, 2_000
    return encode_spans([span])


def _remote(trace_id: int, flags: int) -> context.Context:
    parent = SpanContext(trace_id, 0xAAAA, is_remote=True, trace_flags=TraceFlags(flags))
    return trace.set_span_in_context(NonRecordingSpan(parent))


CASES: dict[str, tuple[Sampler, int, Callable[[], context.Context | None]]] = {
    "root": (ParentBased(ALWAYS_ON), SAMPLED_BY_HALF, lambda: None),
    "child of a sampled remote parent": (ParentBased(ALWAYS_ON), 7, lambda: _remote(0xBEEF, 0x01)),
    "child of a sampled remote parent with a random trace id": (
        ParentBased(ALWAYS_ON),
        7,
        lambda: _remote(0xBEEF, 0x03),
    ),
    "root sampled by ratio": (ParentBased(TraceIdRatioBased(0.5)), SAMPLED_BY_HALF, lambda: None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_recorded_span_exports_as_the_sdks_does(
    case: str, provider: TracerProvider, configure: Callable[..., None], spans: InMemorySpanExporter
) -> None:
    sampler, trace_id, parent = CASES[case]
    configure(sampler, trace_id)

    def record(start: Callable[..., trace.Span]) -> trace.Span:
        span = start("send mcp.events", context=parent(), kind=SpanKind.PRODUCER, attributes=ATTRIBUTES)
        span.set_attribute(semconv.MESSAGING_MESSAGE_ID, "e-1")
        span.set_attributes({semconv.MESSAGING_KAFKA_OFFSET: 42})
        span.add_event("retried", {"attempt": 2}, timestamp=1_500)
        span.set_status(Status(StatusCode.ERROR, "kafka_unavailable"))
        span.end()
        return span

    by_sdk, by_lean = _both(provider, record)
    exported = spans.get_finished_spans()
    assert len(exported) == 2
    assert by_lean.is_recording() is False  # ended
    assert by_lean.get_span_context() == by_sdk.get_span_context()
    assert _exported_bytes(exported[1]) == _exported_bytes(exported[0])
    assert exported[1].attributes[semconv.MESSAGING_MESSAGE_ID] == "e-1"


@pytest.mark.parametrize(
    ("sampler", "trace_id", "parent"),
    [
        (ParentBased(TraceIdRatioBased(0.5)), DROPPED_BY_HALF, lambda: None),
        (ParentBased(ALWAYS_ON), 7, lambda: _remote(0xBEEF, 0x00)),
    ],
    ids=["root dropped by ratio", "child of an unsampled remote parent"],
)
def test_an_unsampled_span_carries_the_same_context_and_records_nothing(
    sampler: Sampler,
    trace_id: int,
    parent: Callable[[], context.Context | None],
    provider: TracerProvider,
    configure: Callable[..., None],
    spans: InMemorySpanExporter,
) -> None:
    configure(sampler, trace_id)
    by_sdk, by_lean = _both(provider, lambda start: start("kafka.consume", context=parent(), kind=SpanKind.CONSUMER))
    assert isinstance(by_lean, NonRecordingSpan)
    assert not by_lean.is_recording()
    assert by_lean.get_span_context() == by_sdk.get_span_context()
    assert not by_lean.get_span_context().trace_flags.sampled
    by_lean.end()
    assert spans.get_finished_spans() == ()


def test_as_current_is_start_as_current_span(
    provider: TracerProvider, configure: Callable[..., None], spans: InMemorySpanExporter
) -> None:
    configure(ParentBased(ALWAYS_ON), SAMPLED_BY_HALF)
    outside = trace.get_current_span()

    def fail_inside(start: Callable[..., trace.Span]) -> trace.Span:
        span = start("send mcp.events", kind=SpanKind.PRODUCER, attributes=ATTRIBUTES)
        with pytest.raises(RuntimeError), lean_span.as_current(span) as current:
            assert trace.get_current_span() is current is span
            raise RuntimeError("broker gone")
        assert trace.get_current_span() is outside
        return span

    sdk_tracer = provider.get_tracer(TRACER_NAME)
    with pytest.raises(RuntimeError), sdk_tracer.start_as_current_span("send mcp.events", kind=SpanKind.PRODUCER):
        raise RuntimeError("broker gone")
    _, by_lean = _both(provider, fail_inside)
    expected, sdk_form, lean_form = spans.get_finished_spans()
    for exported in (sdk_form, lean_form):
        assert exported.status.status_code is StatusCode.ERROR
        assert exported.status.description == expected.status.description == "RuntimeError: broker gone"
        (event,) = exported.events
        assert event.name == "exception"
        assert _without_stacktrace(event.attributes) == _without_stacktrace(expected.events[0].attributes)
    assert not by_lean.is_recording()


def test_an_ended_span_changes_no_more(
    provider: TracerProvider, configure: Callable[..., None], spans: InMemorySpanExporter
) -> None:
    configure(ParentBased(ALWAYS_ON), SAMPLED_BY_HALF)
    span = lean_span.start_span("kafka.consume", kind=SpanKind.CONSUMER, attributes={"a": 1})
    span.end()
    span.set_attribute("a", 2)
    span.set_status(Status(StatusCode.ERROR))
    span.end()
    (exported,) = spans.get_finished_spans()
    assert dict(exported.attributes) == {"a": 1}
    assert exported.status.status_code is StatusCode.UNSET


LINKS = [
    trace.Link(SpanContext(0xBEEF, 0xA1, is_remote=True, trace_flags=TraceFlags(1)), {"messaging.kafka.offset": 7}),
    trace.Link(SpanContext(0xCAFE, 0xB2, is_remote=True), {"messaging.batch.message_count": 3}),
    trace.Link(trace.INVALID_SPAN_CONTEXT),  # a link to nothing, saying nothing: the SDK drops it
]


def test_links_added_ready_built_export_as_the_sdks_add_link(
    provider: TracerProvider, configure: Callable[..., None], spans: InMemorySpanExporter
) -> None:
    configure(ParentBased(ALWAYS_ON), SAMPLED_BY_HALF)

    def linked(start: Callable[..., trace.Span]) -> trace.Span:
        span = start("clickhouse.insert_batch", kind=SpanKind.CLIENT, attributes=ATTRIBUTES)
        lean_span.add_links(span, LINKS[:1])  # the SDK's span: through add_link
        lean_span.add_links(span, LINKS[1:])
        span.end()
        lean_span.add_links(span, LINKS)  # ended: nothing more is kept
        return span

    by_sdk, by_lean = _both(provider, linked)
    assert isinstance(by_lean, lean_span.LeanSpan)
    assert not isinstance(by_sdk, lean_span.LeanSpan)
    sdk_form, lean_form = spans.get_finished_spans()
    assert [link.context.span_id for link in lean_form.links] == [0xA1, 0xB2]
    assert _exported_bytes(lean_form) == _exported_bytes(sdk_form)


def test_without_an_sdk_provider_the_api_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_span.trace, "get_tracer_provider", trace.NoOpTracerProvider)
    monkeypatch.setattr(lean_span, "_sdk", None)
    assert lean_span._sdk_tracer() is None


def _without_stacktrace(attributes: Any) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if k != "exception.stacktrace"}


@pytest.mark.parametrize(
    ("limits", "lean"),
    [
        (SpanLimits(), True),
        (SpanLimits(max_span_attributes=SpanLimits.UNSET, max_links=5000), True),
        (SpanLimits(max_span_attribute_length=64), False),
        (SpanLimits(max_attribute_length=64), False),
        (SpanLimits(max_span_attributes=lean_span.MOST_ATTRIBUTES - 1), False),
        (SpanLimits(max_event_attributes=2), False),
    ],
)
def test_limits_that_would_change_an_attribute_leave_spans_to_the_sdk(limits: SpanLimits, lean: bool) -> None:
    assert lean_span.limits_keep_values(limits) is lean


def test_with_such_limits_the_sdks_tracer_starts_the_span(monkeypatch: pytest.MonkeyPatch) -> None:
    limited = TracerProvider(span_limits=SpanLimits(max_span_attribute_length=4))
    monkeypatch.setattr(lean_span.trace, "get_tracer_provider", lambda: limited)
    monkeypatch.setattr(lean_span, "_sdk", None)
    assert lean_span._sdk_tracer() is None

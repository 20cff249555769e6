"""A consume span under an unsampled parent: said directly when the SDK's sampler would drop it,
with exactly the context the SDK would have given it, and started through the sampler otherwise."""

from __future__ import annotations

import pytest
from confluent_kafka import Message
from opentelemetry.sdk.trace import Tracer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from sentinel import lean_span, propagation, semconv
from workers.bridge.consume_span import ConsumeSpan, scan_headers

PARENT = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7"
NEW_SPAN_ID = 0x1122334455667788


def _consume_span(traceparent: str, tracestate: str | None = None) -> ConsumeSpan:
    headers = [(semconv.HEADER_TRACEPARENT, traceparent.encode())]
    if tracestate is not None:
        headers.append((semconv.HEADER_TRACESTATE, tracestate.encode()))
    message = Message(topic="mcp.events", partition=0, offset=7, headers=headers, value=b"{}")
    return ConsumeSpan(message, headers, scan_headers(headers), "sentinel-bridge")


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Tracer:
    tracer = lean_span._sdk_tracer()
    assert tracer is not None, "the tests' tracer provider is the SDK's"
    monkeypatch.setattr(tracer.id_generator, "generate_span_id", lambda: NEW_SPAN_ID)
    return tracer


@pytest.mark.parametrize("flags", ["00", "02", "04", "0a", "fe"])
@pytest.mark.parametrize("tracestate", [None, "vendor=a,other=b"])
def test_the_context_is_the_one_the_sdk_gives_and_nothing_is_recorded(
    flags: str, tracestate: str | None, sdk: Tracer, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _consume_span(f"{PARENT}-{flags}", tracestate)
    direct.end()
    assert direct.span is not None and not direct.span.is_recording()
    monkeypatch.setattr(lean_span, "child_of_unsampled_remote", lambda _traceparent: None)
    through_sampler = _consume_span(f"{PARENT}-{flags}", tracestate)
    through_sampler.end()
    assert (direct.traceparent, direct.tracestate, direct.malformed) == (
        through_sampler.traceparent,
        through_sampler.tracestate,
        through_sampler.malformed,
    )
    random_trace_id = "02" if int(flags, 16) & 2 else "00"
    assert direct.traceparent == f"00-0af7651916cd43dd8448eb211c80319c-{NEW_SPAN_ID:016x}-{random_trace_id}"
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    "sampler",
    [ALWAYS_ON, ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)],
    ids=["always_on", "parent_based_recording_unsampled_remote_parents"],
)
def test_a_sampler_that_may_record_the_child_is_asked(
    sampler: object, sdk: Tracer, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk, "sampler", sampler)
    span = _consume_span(f"{PARENT}-00")
    span.end()
    (recorded,) = spans.get_finished_spans()
    assert recorded.name == semconv.SPAN_CONSUME
    assert span.traceparent == f"00-0af7651916cd43dd8448eb211c80319c-{NEW_SPAN_ID:016x}-01"


def test_a_sampled_parent_is_recorded(sdk: Tracer, spans: InMemorySpanExporter) -> None:
    _consume_span(f"{PARENT}-01").end()
    assert [s.name for s in spans.get_finished_spans()] == [semconv.SPAN_CONSUME]


@pytest.mark.parametrize(
    ("traceparent", "baggage", "repeated"),
    [
        (f"{PARENT}-01", None, False),  # sampled
        (f"{PARENT}-03", None, False),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-00", None, False),  # no trace
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-00", None, False),  # no span
        (f"{PARENT}-00", b"k=v", False),  # baggage: the propagator's to read
        (f"{PARENT}-00", None, True),  # a header given twice
        (f"01{PARENT[2:]}-00", None, False),  # another version
        (f"{PARENT.upper()}-00", None, False),
        (f"{PARENT}-00 ", None, False),
    ],
)
def test_only_a_plain_valid_unsampled_traceparent_is_read_directly(
    traceparent: str, baggage: bytes | None, repeated: bool
) -> None:
    assert not propagation.plain_unsampled(traceparent.encode(), baggage, repeated=repeated)


def test_a_plain_unsampled_traceparent_is_read_directly() -> None:
    assert propagation.plain_unsampled(f"{PARENT}-00".encode(), None, repeated=False)

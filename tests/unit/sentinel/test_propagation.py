"""sentinel.propagation: W3C trace context over confluent-kafka style headers."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel import propagation
from sentinel.telemetry import tracer

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _span_context_of(headers: propagation.KafkaHeaders) -> trace.SpanContext:
    context, _ = propagation.extract(headers)
    return trace.get_current_span(context).get_span_context()


def test_getter_decodes_bytes_in_a_list_carrier() -> None:
    carrier = [("traceparent", TRACEPARENT.encode()), ("other", b"x")]
    assert propagation.getter.get(carrier, "traceparent") == [TRACEPARENT]
    assert propagation.getter.get(carrier, "missing") is None
    assert propagation.getter.keys(carrier) == ["traceparent", "other"]


def test_getter_returns_every_value_of_a_repeated_key() -> None:
    carrier = [("baggage", b"a=1"), ("baggage", b"b=2")]
    assert propagation.getter.get(carrier, "baggage") == ["a=1", "b=2"]


def test_getter_accepts_str_values() -> None:
    assert propagation.getter.get([("traceparent", TRACEPARENT)], "traceparent") == [TRACEPARENT]


def test_getter_accepts_dict_carriers() -> None:
    carrier = {"traceparent": TRACEPARENT.encode(), "tracestate": "k=v"}
    assert propagation.getter.get(carrier, "traceparent") == [TRACEPARENT]
    assert propagation.getter.get(carrier, "tracestate") == ["k=v"]
    assert propagation.getter.get(carrier, "baggage") is None
    assert sorted(propagation.getter.keys(carrier)) == ["traceparent", "tracestate"]


def test_getter_tolerates_a_none_carrier() -> None:
    assert propagation.getter.get(None, "traceparent") is None
    assert propagation.getter.keys(None) == []


def test_getter_skips_values_that_are_not_utf8() -> None:
    assert propagation.getter.get([("traceparent", b"\xff\xfe")], "traceparent") is None


def test_setter_encodes_into_list_and_dict_carriers() -> None:
    as_list: list[tuple[str, bytes]] = []
    as_dict: dict[str, bytes] = {}
    propagation.setter.set(as_list, "traceparent", TRACEPARENT)
    propagation.setter.set(as_dict, "traceparent", TRACEPARENT)
    assert as_list == [("traceparent", TRACEPARENT.encode())]
    assert as_dict == {"traceparent": TRACEPARENT.encode()}


def test_setter_ignores_a_none_carrier() -> None:
    propagation.setter.set(None, "traceparent", TRACEPARENT)  # must not raise


def test_setter_then_getter_round_trip() -> None:
    carrier: list[tuple[str, bytes]] = []
    propagation.setter.set(carrier, "tracestate", "vendor=abc")
    assert all(isinstance(v, bytes) for _, v in carrier)
    assert propagation.getter.get(carrier, "tracestate") == ["vendor=abc"]


def test_inject_then_extract_yields_the_same_span_context(spans: InMemorySpanExporter) -> None:
    headers: list[tuple[str, bytes]] = []
    with tracer().start_as_current_span("producer") as span:
        propagation.inject(headers)
        expected = span.get_span_context()
    assert [k for k, _ in headers].count("traceparent") == 1
    context, malformed = propagation.extract(headers)
    extracted = trace.get_current_span(context).get_span_context()
    assert malformed is False
    assert extracted.is_remote
    assert extracted.trace_id == expected.trace_id
    assert extracted.span_id == expected.span_id


def test_inject_into_a_dict_carrier_round_trips(spans: InMemorySpanExporter) -> None:
    headers: dict[str, bytes] = {}
    with tracer().start_as_current_span("producer") as span:
        propagation.inject(headers)
        expected = span.get_span_context()
    assert isinstance(headers["traceparent"], bytes)
    extracted = _span_context_of(headers)
    assert (extracted.trace_id, extracted.span_id) == (expected.trace_id, expected.span_id)


def test_inject_with_an_explicit_context() -> None:
    parent = trace.SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=trace.TraceFlags(1))
    headers: list[tuple[str, bytes]] = []
    propagation.inject(headers, context=trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    assert ("traceparent", TRACEPARENT.encode()) in headers


def test_extract_carries_tracestate() -> None:
    extracted = _span_context_of([("traceparent", TRACEPARENT.encode()), ("tracestate", b"vendor=abc")])
    assert extracted.trace_state.get("vendor") == "abc"


def test_absent_traceparent_is_not_malformed() -> None:
    for headers in (None, [], [("event_id", b"x")], {}):
        context, malformed = propagation.extract(headers)
        assert malformed is False
        assert not trace.get_current_span(context).get_span_context().is_valid


@pytest.mark.parametrize(
    "value",
    [
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # missing flags
        b"00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",  # trace id too short
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01",  # span id too short
        b"00-4bf92f3577b34da6a3ce929d0e0e4736ff-00f067aa0ba902b7-01",  # trace id too long
        b"00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # not hex
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        b"",
        b"garbage",
    ],
)
def test_malformed_traceparent_never_raises_and_is_reported(value: bytes) -> None:
    context, malformed = propagation.extract([("traceparent", value)])
    assert malformed is True
    assert not trace.get_current_span(context).get_span_context().is_valid


def test_malformed_traceparent_in_a_dict_carrier_is_reported() -> None:
    _, malformed = propagation.extract({"traceparent": "not-a-traceparent"})
    assert malformed is True


def test_traceparent_that_is_not_utf8_is_reported_malformed() -> None:
    # Present but undecodable: still a malformed traceparent, and it must not raise.
    context, malformed = propagation.extract([("traceparent", b"\xff\xfe\x00\x80garbage")])
    assert not trace.get_current_span(context).get_span_context().is_valid
    assert malformed is True


def test_traceparent_of_formats_a_valid_context() -> None:
    context = trace.SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=trace.TraceFlags(1))
    assert propagation.traceparent_of(context) == TRACEPARENT


def test_traceparent_of_pads_small_ids_and_keeps_unsampled_flags() -> None:
    context = trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(0))
    assert propagation.traceparent_of(context) == f"00-{'0' * 31}1-{'0' * 15}2-00"


def test_traceparent_of_an_invalid_context_is_empty() -> None:
    assert propagation.traceparent_of(trace.INVALID_SPAN_CONTEXT) == ""


def test_traceparent_round_trips_through_span_context(spans: InMemorySpanExporter) -> None:
    with tracer().start_as_current_span("s") as span:
        original = span.get_span_context()
    text = propagation.traceparent_of(original)
    parsed = propagation.span_context_from_traceparent(text)
    assert parsed is not None
    assert parsed.is_remote
    assert (parsed.trace_id, parsed.span_id, parsed.trace_flags) == (
        original.trace_id,
        original.span_id,
        original.trace_flags,
    )
    assert propagation.traceparent_of(parsed) == text


def test_span_context_from_traceparent_agrees_with_the_propagator() -> None:
    parsed = propagation.span_context_from_traceparent(TRACEPARENT)
    assert parsed == _span_context_of([("traceparent", TRACEPARENT.encode())])


def test_span_context_from_traceparent_keeps_tracestate() -> None:
    parsed = propagation.span_context_from_traceparent(TRACEPARENT, "vendor=abc,other=1")
    assert parsed is not None
    assert parsed.trace_state.get("vendor") == "abc"
    assert parsed.trace_state.get("other") == "1"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902zz-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    ],
)
def test_span_context_from_traceparent_rejects_invalid_input(value: str) -> None:
    assert propagation.span_context_from_traceparent(value) is None


def test_extract_follows_a_replaced_global_propagator() -> None:
    from opentelemetry import propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator

    original = propagate.get_global_textmap()
    # Only baggage (as OTEL_PROPAGATORS=baggage would set): a traceparent is then ignored.
    propagate.set_global_textmap(CompositePropagator([W3CBaggagePropagator()]))
    try:
        context, _ = propagation.extract([("traceparent", TRACEPARENT.encode()), ("baggage", b"user=alice")])
    finally:
        propagate.set_global_textmap(original)
    assert not trace.get_current_span(context).get_span_context().is_valid
    assert baggage.get_baggage("user", context) == "alice"


def test_extract_reads_the_first_of_repeated_traceparents() -> None:
    second = b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"
    extracted = _span_context_of([("traceparent", TRACEPARENT.encode()), ("traceparent", second)])
    assert (extracted.trace_id, extracted.span_id) == (TRACE_ID, SPAN_ID)


def test_tracestate_of_writes_the_header_and_nothing_without_one() -> None:
    state = trace.TraceState([("vendor", "abc"), ("other", "1")])
    context = trace.SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_state=state)
    assert propagation.tracestate_of(context) == "vendor=abc,other=1"
    assert propagation.tracestate_of(trace.SpanContext(TRACE_ID, SPAN_ID, is_remote=False)) == ""

"""W3C trace context over Kafka headers.

confluent-kafka carries headers as a list of `(str, bytes)` tuples (or `None`); producers also
accept a dict. The getter and setter tolerate all of these, like the contrib confluent-kafka
instrumentation, and go through the global propagator so `OTEL_PROPAGATORS` keeps working.
A malformed header never raises: the message simply starts a new trace, and it is counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sentinel import semconv

KafkaHeaders = list[tuple[str, bytes]] | Mapping[str, Any] | None

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")
# The one spelling every W3C propagator reads the same way: version 00, nothing around it.
_PLAIN_TRACEPARENT = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
# The same, with a trace id and a span id that are not all zeros: a valid context. One match per
# message in the bridge, where three checks (the spelling, then each id) cost twice as much.
_PLAIN_VALID_TRACEPARENT = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def _decode(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(value)


class KafkaHeadersGetter(Getter[KafkaHeaders]):
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        if carrier is None:
            return None
        if isinstance(carrier, Mapping):
            value = _decode(carrier.get(key))
            return None if value is None else [value]
        values = [v for k, raw in carrier if k == key and (v := _decode(raw)) is not None]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        if carrier is None:
            return []
        if isinstance(carrier, Mapping):
            return list(carrier.keys())
        return [k for k, _ in carrier]


class KafkaHeadersSetter(Setter[Any]):
    def set(self, carrier: Any, key: str, value: str) -> None:
        if carrier is None:
            return
        encoded = value.encode("utf-8")
        if isinstance(carrier, dict):
            carrier[key] = encoded
        else:
            carrier.append((key, encoded))


getter = KafkaHeadersGetter()
setter = KafkaHeadersSetter()


def inject(headers: list[tuple[str, bytes]] | dict[str, bytes], context: Context | None = None) -> None:
    """Write the current (or given) context's W3C headers into `headers`, in place."""
    propagate.inject(headers, context=context, setter=setter)


def extract(headers: KafkaHeaders) -> tuple[Context, bool]:
    """Return the context carried by `headers` and whether a present traceparent was malformed.

    Never raises: garbage in any header yields an empty context (a new trace starts).
    """
    try:
        context = propagate.extract(headers, getter=getter)
    except Exception:  # noqa: BLE001 - a propagator must not stop the consumer
        return Context(), True
    # keys(), not get(): a traceparent that is not even UTF-8 is present, and malformed.
    present = semconv.HEADER_TRACEPARENT in getter.keys(headers)
    valid = trace.get_current_span(context).get_span_context().is_valid
    return context, present and not valid


def extract_scanned(
    traceparent: bytes | None,
    tracestate: bytes | None,
    baggage: bytes | None,
    headers: KafkaHeaders,
    *,
    repeated: bool,
) -> tuple[Context, bool]:
    """What extract(headers) returns, given the three headers it reads, read without the
    propagator's per-call machinery when that gives the same answer.

    The bridge extracts a context for every run of messages; through the global propagator that
    was a sixth of its CPU. The shortcut is taken only for the default propagators
    (`tracecontext,baggage`), no baggage, no repeated header (`repeated`: the scan found a header
    name twice; the propagator reads the first value, a scan the last), a plain version-00
    traceparent and a UTF-8 tracestate; anything else (another OTEL_PROPAGATORS, baggage, an odd
    or malformed header) goes through extract().
    """
    if traceparent is None and not repeated and baggage is None and _default_propagators():
        return Context(), False
    if traceparent is None or not _readable_directly(traceparent, baggage, repeated=repeated):
        return extract(headers)
    try:
        state = tracestate.decode("utf-8") if tracestate else ""
    except UnicodeDecodeError:
        return extract(headers)
    span_context = span_context_from_traceparent(traceparent.decode("ascii"), state)
    if span_context is None:  # all-zero trace or span id: present, and invalid
        return Context(), True
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context)), False


def carried_traceparent(
    traceparent: bytes | None,
    tracestate: bytes | None,
    baggage: bytes | None,
    headers: KafkaHeaders,
    *,
    repeated: bool,
) -> tuple[str, bool]:
    """The traceparent of the context extract(headers) returns ('' for none), and whether a present
    traceparent was malformed: what a no-op tracer passes on. A plain one is returned as it came,
    without building a context (the bridge asks this per message run when tracing is off)."""
    if traceparent is not None and _plain_and_valid(traceparent, baggage, repeated=repeated):
        return traceparent.decode("ascii"), False
    context, malformed = extract_scanned(traceparent, tracestate, baggage, headers, repeated=repeated)
    return traceparent_of(trace.get_current_span(context).get_span_context()), malformed


def plain_unsampled(traceparent: bytes, baggage: bytes | None, *, repeated: bool) -> bool:
    """Whether extract() would read `traceparent` exactly as written (see carried_traceparent) as a
    valid context whose sampled flag is clear."""
    return (
        len(traceparent) == 55
        and traceparent[54] in _EVEN_HEX_DIGITS  # the flags' low bit, "sampled", is 0
        and _plain_and_valid(traceparent, baggage, repeated=repeated)
    )


_EVEN_HEX_DIGITS = frozenset(b"02468ace")


def unsampled_child_traceparent(parent: bytes, span_id: int) -> str:
    """The traceparent of span `span_id`, unsampled, in the trace of the plain traceparent `parent`
    (see plain_unsampled), keeping its random-trace-id flag: as traceparent_of writes the context
    the SDK gives a child it does not record."""
    flags = int(parent[53:55], 16) & trace.TraceFlags.RANDOM_TRACE_ID
    return f"00-{parent[3:35].decode('ascii')}-{span_id:016x}-{flags:02x}"


def _plain_and_valid(traceparent: bytes, baggage: bytes | None, *, repeated: bool) -> bool:
    """_readable_directly, and both ids are not all zeros."""
    return _readable_directly(traceparent, baggage, repeated=repeated, spelling=_PLAIN_VALID_TRACEPARENT)


def _readable_directly(
    traceparent: bytes, baggage: bytes | None, *, repeated: bool, spelling: re.Pattern[bytes] = _PLAIN_TRACEPARENT
) -> bool:
    """Whether the propagator would read `traceparent` exactly as it is written: the default
    propagators, no baggage, no repeated header, version 00 with nothing around it (`spelling`, or
    a stricter pattern)."""
    return not repeated and baggage is None and spelling.fullmatch(traceparent) is not None and _default_propagators()


_default_for: tuple[object, bool] | None = None


def _default_propagators() -> bool:
    """Whether the global propagator is the SDK's default (checked again if it is replaced)."""
    global _default_for
    current = propagate.get_global_textmap()
    if _default_for is None or _default_for[0] is not current:
        kinds = [type(p) for p in getattr(current, "_propagators", ())]
        default = type(current) is CompositePropagator and kinds == [
            TraceContextTextMapPropagator,
            W3CBaggagePropagator,
        ]
        _default_for = (current, default)
    return _default_for[1]


def traceparent_of(span_context: trace.SpanContext) -> str:
    """The W3C traceparent for a span context ('' when invalid), without a propagator round trip.

    The bridge formats one per event; going through `propagate.inject` for each costs several
    microseconds more and yields the same string.
    """
    if not span_context.is_valid:
        return ""
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"


def span_context_from_traceparent(traceparent: str, tracestate: str = "") -> trace.SpanContext | None:
    """A remote SpanContext from a traceparent string, or None when it is not a valid one."""
    match = _TRACEPARENT.match(traceparent)
    if match is None or match.group(1) == "ff":
        return None
    trace_id, span_id, flags = int(match.group(2), 16), int(match.group(3), 16), int(match.group(4), 16)
    if not trace_id or not span_id:
        return None
    state = trace.TraceState.from_header([tracestate]) if tracestate else None
    return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags), trace_state=state)

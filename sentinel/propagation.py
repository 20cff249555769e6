"""W3C trace context over Kafka headers, and in the chunk.

confluent-kafka carries headers as a list of `(str, bytes)` tuples (or `None`); producers also
accept a dict. The getter and setter tolerate all of these, like the contrib confluent-kafka
instrumentation, and go through the global propagator so `OTEL_PROPAGATORS` keeps working.
A malformed header never raises: the message simply starts a new trace, and it is counted.

The chunk (workers/chunk.py) and the stored rows carry each event's span context as a W3C
`traceparent` and `tracestate` whatever the configured propagators: that is Sentinel's own
format, so it is written and read by the W3C propagator itself, not the global one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sentinel import semconv

KafkaHeaders = list[tuple[str, bytes]] | Mapping[str, Any] | None

_W3C = TraceContextTextMapPropagator()


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
    """Write the current (or given) context's headers into `headers`, in place."""
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


def traceparent_of(span_context: trace.SpanContext) -> str:
    """The W3C traceparent of a span context ('' when invalid)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
    return carrier.get(semconv.HEADER_TRACEPARENT, "")


def tracestate_of(span_context: trace.SpanContext) -> str:
    """The W3C tracestate of a span context ('' when it has none)."""
    return span_context.trace_state.to_header() if span_context.trace_state else ""


def span_context_from_traceparent(traceparent: str, tracestate: str = "") -> trace.SpanContext | None:
    """The remote SpanContext a W3C traceparent (and tracestate) describe, or None when invalid."""
    carrier = {semconv.HEADER_TRACEPARENT: traceparent}
    if tracestate:
        carrier[semconv.HEADER_TRACESTATE] = tracestate
    span_context = trace.get_current_span(_W3C.extract(carrier)).get_span_context()
    return span_context if span_context.is_valid else None

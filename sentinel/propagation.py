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
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

from sentinel import semconv

KafkaHeaders = list[tuple[str, bytes]] | Mapping[str, Any] | None

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")


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

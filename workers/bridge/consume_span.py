"""`kafka.consume` spans: one per run of consecutive messages that share a trace context.

Every message's trace gets a CONSUMER span, child of the context in its headers. Messages of one
POST /events share that context (ingest sends a request's events under one producer span), so a
run of them in one partition is recorded as one span: a single-message span carries the message's
offset and id, a batch span `messaging.batch.message_count` and its first and last offset, and the
per-message values live on the insert span's links (the OTel messaging conventions for batches). This records the same
trace as a span per message at a fraction of the cost: span creation and export dominate the
bridge's CPU when tracing is on.
"""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import Message
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from sentinel import lean_span, metrics, propagation, semconv

TraceKey = tuple[bytes | None, bytes | None, bytes | None]


class ScannedHeaders(NamedTuple):
    trace_key: TraceKey  # raw traceparent, tracestate, baggage: the grouping key
    event_id: str | None
    origin: str | None  # set on replayed dead letters
    # A header name appears twice: the key is left empty (such messages are never grouped) and
    # the context is read by the propagator itself, which takes the first value, not the last.
    repeated: bool = False


def scan_headers(headers: list[tuple[str, bytes]] | None) -> ScannedHeaders:
    """Everything the bridge reads from a message's headers (dict() builds the lookup in C)."""
    if not headers:
        return ScannedHeaders((None, None, None), None, None)
    found = dict(headers)
    event_id, origin = found.get(semconv.HEADER_EVENT_ID), found.get(semconv.HEADER_ORIGIN)
    repeated = len(found) != len(headers)
    # Built in C: the NamedTuple's own constructor is a Python call, once per message.
    return tuple.__new__(
        ScannedHeaders,
        (
            (None, None, None)
            if repeated
            else (
                found.get(semconv.HEADER_TRACEPARENT),
                found.get(semconv.HEADER_TRACESTATE),
                found.get(semconv.HEADER_BAGGAGE),
            ),
            event_id.decode("utf-8", "replace") if event_id else None,
            origin.decode("utf-8", "replace") if origin else None,
            repeated,
        ),
    )


class ConsumeSpan:
    """An open `kafka.consume` span over consecutive messages of one partition and one context."""

    __slots__ = (
        "count",
        "first_offset",
        "key",
        "last_offset",
        "malformed",
        "message_id",
        "partition",
        "span",
        "traceparent",
        "tracestate",
    )

    def __init__(
        self,
        message: Message,
        headers: list[tuple[str, bytes]] | None,
        scanned: ScannedHeaders,
        group: str,
        *,
        traced: bool = True,
    ) -> None:
        self.partition = message.partition()
        self.key = key = scanned.trace_key
        self.first_offset = self.last_offset = message.offset()
        self.count = 0
        self.message_id: str | None = None
        if not traced:
            # Tracing off: what the API's no-op tracer would give, without its cost (a context,
            # a tracer lookup and an attribute dict per run): the carried context, unchanged.
            self.span: Span = trace.INVALID_SPAN
            self.traceparent, self.malformed = propagation.carried_traceparent(*key, headers, repeated=scanned.repeated)
            self.tracestate = key[1].decode("utf-8", "replace") if key[1] and self.traceparent else ""
            return
        parent = key[0]
        if parent is not None and propagation.plain_unsampled(parent, key[2], repeated=scanned.repeated):
            # Not sampled upstream: with the SDK's parent-based samplers the span would not be
            # recorded either, and only its context travels on.
            child = lean_span.child_of_unsampled_remote(parent)
            if child is not None:
                self.span = trace.INVALID_SPAN
                self.traceparent, self.malformed = child, False
                self.tracestate = key[1].decode("utf-8", "replace") if key[1] else ""
                return
        context, self.malformed = propagation.extract_scanned(*key, headers, repeated=scanned.repeated)
        self.span = lean_span.start_span(
            semconv.SPAN_CONSUME,
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={
                semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_KAFKA,
                semconv.MESSAGING_OPERATION_NAME: "poll",
                semconv.MESSAGING_OPERATION_TYPE: "receive",
                semconv.MESSAGING_DESTINATION_NAME: message.topic(),
                semconv.MESSAGING_DESTINATION_PARTITION_ID: str(self.partition),
                semconv.MESSAGING_CONSUMER_GROUP_NAME: group,
            },
        )
        # What each event carries to the worker: this span's context, for the row and the link.
        self.traceparent = propagation.traceparent_of(self.span.get_span_context())
        self.tracestate = key[1].decode("utf-8", "replace") if key[1] else ""

    def continues(self, partition: int, key: TraceKey) -> bool:
        return self.partition == partition and self.key == key and key[0] is not None

    def add(self, offset: int, message_id: str) -> None:
        self.count += 1
        self.last_offset = offset
        self.message_id = message_id

    def fail(self, offset: int, reason: str) -> None:
        """Record this span's single message as dead-lettered."""
        self.span.set_status(Status(StatusCode.ERROR, reason))
        self.span.set_attribute(semconv.DEAD_LETTER_REASON, reason)
        self.span.set_attribute(semconv.MESSAGING_KAFKA_OFFSET, offset)

    def end(self) -> None:
        span = self.span
        if span is trace.INVALID_SPAN and not self.malformed:
            return  # tracing off or unsampled: nothing to record, count or end
        if span.is_recording():  # unsampled or tracing off: nothing to describe
            if self.count == 1:
                span.set_attribute(semconv.MESSAGING_KAFKA_OFFSET, self.first_offset)
                span.set_attribute(semconv.MESSAGING_MESSAGE_ID, self.message_id or "")
            elif self.count > 1:
                span.set_attribute(semconv.MESSAGING_BATCH_MESSAGE_COUNT, self.count)
                span.set_attribute(semconv.KAFKA_FIRST_OFFSET, self.first_offset)
                span.set_attribute(semconv.KAFKA_LAST_OFFSET, self.last_offset)
        if self.malformed:
            metrics.BRIDGE_MALFORMED_TRACE_HEADERS.inc(max(self.count, 1))
        span.end()

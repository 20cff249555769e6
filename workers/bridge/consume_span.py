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
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from sentinel import metrics, propagation, semconv
from sentinel.telemetry import tracer

TraceKey = tuple[bytes | None, bytes | None, bytes | None]


class ScannedHeaders(NamedTuple):
    trace_key: TraceKey  # raw traceparent, tracestate, baggage: the grouping key
    event_id: str | None
    origin: str | None  # set on replayed dead letters
    # A header name appears twice: the key is left empty, so such messages are never grouped
    # (the propagator reads the first value, a dict of the headers the last).
    repeated: bool = False


def scan_headers(headers: list[tuple[str, bytes]] | None) -> ScannedHeaders:
    """Everything the bridge reads from a message's headers (dict() builds the lookup in C)."""
    if not headers:
        return ScannedHeaders((None, None, None), None, None)
    found = dict(headers)
    event_id, origin = found.get(semconv.HEADER_EVENT_ID), found.get(semconv.HEADER_ORIGIN)
    repeated = len(found) != len(headers)
    return ScannedHeaders(
        (
            (None, None, None)
            if repeated
            else (
                found.get(semconv.HEADER_TRACEPARENT),
                found.get(semconv.HEADER_TRACESTATE),
                found.get(semconv.HEADER_BAGGAGE),
            )
        ),
        event_id.decode("utf-8", "replace") if event_id else None,
        origin.decode("utf-8", "replace") if origin else None,
        repeated,
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
        self, message: Message, headers: list[tuple[str, bytes]] | None, scanned: ScannedHeaders, group: str
    ) -> None:
        self.partition = message.partition()
        self.key = scanned.trace_key
        self.first_offset = self.last_offset = message.offset()
        self.count = 0
        self.message_id: str | None = None
        context, self.malformed = propagation.extract(headers)
        # With tracing off (the API's no-op tracer), or a parent-based sampler dropping the child of
        # an unsampled parent, the span records nothing and carries a context on regardless.
        self.span: Span = tracer().start_span(
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
        span_context = self.span.get_span_context()
        self.traceparent = propagation.traceparent_of(span_context)
        self.tracestate = propagation.tracestate_of(span_context)

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

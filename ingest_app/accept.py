"""POST /events's work, called by the Flask view in `routes`: check the caller, read and validate the
events, publish them to Kafka under `send mcp.events` PRODUCER spans and wait for Kafka's
acknowledgement. The view answers with the `Reply` returned here.

Events that carry no trace context of their own share one span per request, a child of the
request's server span. An event with a valid `traceparent` field (the MCP call it audits) gets a
span of its own in that trace instead, linked to the server span, so its Kafka message continues
the call's trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson
from flask import Request
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from ingest_app.auth import authorized
from ingest_app.body import BodyError, parse_events
from ingest_app.publisher import KafkaPublisher, OutgoingMessage, PublishUnavailable
from sentinel import events, metrics, propagation, semconv, telemetry


class Reply(NamedTuple):
    status: int
    payload: dict[str, Any]
    headers: Mapping[str, str] = MappingProxyType({})  # extra response headers


class Prepared(NamedTuple):
    """An event ready to publish."""

    event_id: str
    key: bytes | None  # the Kafka key: the event's session
    value: bytes  # the event's JSON
    # The event's own `traceparent` and `tracestate` fields as sent (any JSON value), when it has a
    # traceparent field; None otherwise.
    trace_fields: tuple[Any, Any] | None = None


def _refuse(status: int, reason: str, rejected: int, /, **detail: Any) -> Reply:
    metrics.INGEST_REQUESTS.labels(str(status)).inc()
    metrics.INGEST_EVENTS_REJECTED.labels(reason).inc(max(rejected, 1))
    return Reply(status, {"error": reason, **detail})


def accept_events(request: Request, config: Mapping[str, Any], publisher: KafkaPublisher) -> Reply:
    """The answer to one POST /events, waiting in this thread for Kafka's acknowledgement. Raises
    what reading the body raises (Werkzeug's HTTPException: 413 beyond MAX_CONTENT_LENGTH, 400 for
    a body cut short); Flask's error handlers answer it."""
    refusal = refuse_unauthorized(request.headers.get("Authorization"), config)
    if refusal is not None:
        return refusal
    try:
        body = request.get_data(cache=False)
    except OSError:
        # The client stopped sending its body (the socket read timed out): free the thread.
        return _refuse(408, "body_timeout", 1, detail="the request body did not arrive in time")
    checked = check_events(body, request.content_length, request.content_type, config)
    if isinstance(checked, Reply):
        return checked
    with publishing(checked, publisher.topic) as (spans, messages):
        try:
            publisher.publish(messages)
        except PublishUnavailable as exc:
            return unavailable(spans, exc, len(checked), config)
    return accepted(checked)


def refuse_unauthorized(authorization: str | None, config: Mapping[str, Any]) -> Reply | None:
    """A 401 unless the Authorization header carries one of the configured tokens."""
    if authorized(authorization, config["SENTINEL_TOKENS"]):
        return None
    metrics.INGEST_REQUESTS.labels("401").inc()
    return Reply(
        401,
        {"error": "unauthorized", "detail": "a valid bearer token is required"},
        {"WWW-Authenticate": 'Bearer realm="sentinel"'},
    )


def check_events(
    body: bytes, content_length: int | None, content_type: str | None, config: Mapping[str, Any]
) -> Reply | list[Prepared]:
    """The body's events ready to publish, each with its id, or the refusal of the whole request."""
    limit = config["MAX_CONTENT_LENGTH"]
    if content_length is None and limit is not None and len(body) >= limit:
        # A chunked body is cut at the limit by Werkzeug without an error; never accept a prefix.
        return _refuse(413, "body_too_large", 1, detail=f"the body is larger than {limit} bytes")
    try:
        candidates = parse_events(body, content_type)
    except BodyError as exc:
        return _refuse(400, "invalid_json", 1, detail=str(exc))
    if len(candidates) > config["SENTINEL_MAX_EVENTS"]:
        return _refuse(
            413,
            "too_many_events",
            len(candidates),
            detail=f"{len(candidates)} events; at most {config['SENTINEL_MAX_EVENTS']} per request",
        )
    if not candidates:
        return _refuse(400, "no_events", 1, detail="the array holds no events")

    max_bytes = config["SENTINEL_MAX_EVENT_BYTES"]
    prepared: list[Prepared] = []
    fresh_ids: Iterator[str] | None = None  # drawn only when an event comes without an id
    for index, event in enumerate(candidates):
        problem = events.validate(event)
        if problem is not None:
            return _refuse(400, "invalid_event", len(candidates), index=index, **problem.as_dict())
        event_id = event.get("event_id")
        if not event_id:
            if fresh_ids is None:
                # One read of the OS's random source for the rest of the request's events.
                fresh_ids = iter(events.new_event_ids(len(candidates) - index))
            event_id = next(fresh_ids)
        event["event_id"] = event_id
        value = orjson.dumps(event)
        if len(value) > max_bytes:
            return _refuse(
                413,
                "event_too_large",
                len(candidates),
                index=index,
                detail=f"event is {len(value)} bytes; at most {max_bytes}",
            )
        session = event.get("session_id")
        trace_fields = None
        if events.TRACEPARENT_FIELD in event:
            trace_fields = (event[events.TRACEPARENT_FIELD], event.get(events.TRACESTATE_FIELD))
        prepared.append(Prepared(event_id, session.encode() if session else None, value, trace_fields))
    return prepared


def event_trace_context(trace_fields: tuple[Any, Any] | None) -> Context | None:
    """The trace context an event carries in its own fields, read by the global propagator, or None
    when it has none or its traceparent is malformed (counted). A tracestate that is not a string
    is left out (counted) and the traceparent still used."""
    if trace_fields is None:
        return None
    traceparent, tracestate = trace_fields
    if type(traceparent) is not str:
        metrics.INGEST_MALFORMED_EVENT_TRACE_CONTEXT.inc()
        return None
    carrier = {semconv.HEADER_TRACEPARENT: traceparent}
    if type(tracestate) is str:
        carrier[semconv.HEADER_TRACESTATE] = tracestate
    elif tracestate is not None:
        metrics.INGEST_MALFORMED_EVENT_TRACE_CONTEXT.inc()
    try:
        # An empty context to start from: a traceparent the propagator cannot read leaves it
        # empty, where the current one would hand back the request's own span.
        extracted = propagate.extract(carrier, context=Context())
    except Exception:  # noqa: BLE001 - a propagator (OTEL_PROPAGATORS) must not refuse the event
        extracted = Context()
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        metrics.INGEST_MALFORMED_EVENT_TRACE_CONTEXT.inc()
        return None
    return extracted


def _publish_attributes(topic: str) -> dict[str, Any]:
    return {
        semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_KAFKA,
        semconv.MESSAGING_OPERATION_NAME: "send",
        semconv.MESSAGING_OPERATION_TYPE: "send",
        semconv.MESSAGING_DESTINATION_NAME: topic,
    }


@contextmanager
def publishing(prepared: list[Prepared], topic: str) -> Iterator[tuple[list[Span], list[OutgoingMessage]]]:
    """The `send mcp.events` spans of the request, open while the caller publishes, and the
    messages to publish, each carrying its span's context in its headers. An exception from the
    caller's block marks every span failed and is raised again."""
    tracer = telemetry.tracer()
    request_context = context.get_current()
    request_span = trace.get_current_span(request_context).get_span_context()
    own_contexts = [event_trace_context(event.trace_fields) for event in prepared]
    sharing = own_contexts.count(None)

    spans: list[Span] = []
    shared_headers: list[tuple[str, bytes]] = []
    if sharing:
        # One span for every event without a context of its own, a child of the server span.
        attributes = _publish_attributes(topic)
        attributes[semconv.MESSAGING_BATCH_MESSAGE_COUNT] = sharing
        if sharing == 1:
            attributes[semconv.MESSAGING_MESSAGE_ID] = next(
                event.event_id for event, own in zip(prepared, own_contexts, strict=True) if own is None
            )
        shared = tracer.start_span(semconv.SPAN_PUBLISH, kind=SpanKind.PRODUCER, attributes=attributes)
        spans.append(shared)
        propagation.inject(shared_headers, trace.set_span_in_context(shared, request_context))

    links = [Link(request_span)] if request_span.is_valid else []
    messages: list[OutgoingMessage] = []
    for event, own in zip(prepared, own_contexts, strict=True):
        headers = shared_headers
        if own is not None:
            attributes = _publish_attributes(topic)
            attributes[semconv.MESSAGING_MESSAGE_ID] = event.event_id
            span = tracer.start_span(
                semconv.SPAN_PUBLISH, context=own, kind=SpanKind.PRODUCER, attributes=attributes, links=links
            )
            spans.append(span)
            # The event's trace, with the request's baggage.
            headers = []
            propagation.inject(headers, trace.set_span_in_context(span, request_context))
        messages.append(
            OutgoingMessage(event.key, event.value, [*headers, (semconv.HEADER_EVENT_ID, event.event_id.encode())])
        )
    try:
        yield spans, messages
    except Exception as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for span in spans:
            span.end()


def unavailable(spans: list[Span], exc: PublishUnavailable, count: int, config: Mapping[str, Any]) -> Reply:
    """The 503 for events Kafka did not acknowledge; the publish spans record why."""
    for span in spans:
        span.set_status(Status(StatusCode.ERROR, str(exc)))
    metrics.INGEST_PRODUCE_ERRORS.inc()
    refused = _refuse(503, "kafka_unavailable", count, detail=str(exc))
    return Reply(refused.status, refused.payload, {"Retry-After": str(config["SENTINEL_RETRY_AFTER_S"])})


def accepted(prepared: list[Prepared]) -> Reply:
    metrics.INGEST_REQUESTS.labels("202").inc()
    metrics.INGEST_EVENTS_ACCEPTED.inc(len(prepared))
    return Reply(202, {"accepted": len(prepared), "event_ids": [event.event_id for event in prepared]})

"""POST /events's work, whoever serves the request: check the caller, read and validate the
events, publish them to Kafka under a `send mcp.events` span and wait for Kafka's acknowledgement.

Served on granian's event loop by `ingest_app.rsgi` (`accept_events_async`, the default), and in a
thread by `ingest_app.events_endpoint` or the Flask view in `routes` (`accept_events`); all answer
with the `Reply` returned here, from the same steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ingest_app.auth import authorized
from ingest_app.body import BodyError, parse_events
from ingest_app.publisher import KafkaPublisher, OutgoingMessage, PublishUnavailable
from sentinel import events, metrics, propagation, semconv
from sentinel.telemetry import tracer

# Bodies from this size on are checked on a thread by `accept_events_async` (a 100-event batch of the
# benchmark is ~30 KB): parsing a 10,000-event batch on the loop would hold up every single event
# waiting behind it (577 ms at p99 beside such a client, against 118 ms behind the WSGI server).
OFFLOAD_BYTES = 64 * 1024


class Incoming(NamedTuple):
    """What POST /events reads of its request, with Werkzeug's meaning (Flask's `Request` gives
    the same values)."""

    authorization: str | None  # the Authorization header
    content_type: str | None
    content_length: int | None  # None when the body is streamed (chunked)
    # The whole body; raises Werkzeug's RequestEntityTooLarge beyond MAX_CONTENT_LENGTH and
    # ClientDisconnected for a body cut short.
    read_body: Callable[[], bytes]


class Reply(NamedTuple):
    status: int
    payload: dict[str, Any]
    headers: Mapping[str, str] = MappingProxyType({})  # extra response headers


def _refuse(status: int, reason: str, rejected: int, /, **detail: Any) -> Reply:
    metrics.INGEST_REQUESTS.labels(str(status)).inc()
    metrics.INGEST_EVENTS_REJECTED.labels(reason).inc(max(rejected, 1))
    return Reply(status, {"error": reason, **detail})


def accept_events(request: Incoming, config: Mapping[str, Any], publisher: KafkaPublisher) -> Reply:
    """The answer to one POST /events, waiting in this thread for Kafka's acknowledgement. Raises
    what `request.read_body` raises (Werkzeug's HTTPException); the caller answers it."""
    refusal = refuse_unauthorized(request.authorization, config)
    if refusal is not None:
        return refusal
    try:
        body = request.read_body()
    except OSError:
        # The client stopped sending its body (the socket read timed out): free the thread.
        return _refuse(408, "body_timeout", 1, detail="the request body did not arrive in time")
    checked = check_events(body, request.content_length, request.content_type, config)
    if isinstance(checked, Reply):
        return checked
    with publishing(checked, publisher.topic) as (span, messages):
        try:
            publisher.publish(messages)
        except PublishUnavailable as exc:
            return unavailable(span, exc, len(checked), config)
    return accepted(checked)


async def accept_events_async(
    authorization: str | None,
    read_body: Callable[[], Awaitable[bytes]],
    content_length: int | None,
    content_type: str | None,
    config: Mapping[str, Any],
    publisher: KafkaPublisher,
) -> Reply:
    """`accept_events` on an event loop (`ingest_app.rsgi`): the same checks, spans and answers,
    awaiting the body and Kafka's acknowledgement instead of blocking a thread on them. Raises what
    `read_body` raises."""
    refusal = refuse_unauthorized(authorization, config)
    if refusal is not None:
        return refusal
    body = await read_body()
    if len(body) < OFFLOAD_BYTES:
        checked = check_events(body, content_length, content_type, config)
    else:
        # Parsing and checking a large body (~3 us per event) on the loop would hold every other
        # request of the process; on a thread they share the GIL with it instead.
        checked = await asyncio.to_thread(check_events, body, content_length, content_type, config)
    if isinstance(checked, Reply):
        return checked
    with publishing(checked, publisher.topic) as (span, messages):
        try:
            await publisher.publish_async(messages)
        except PublishUnavailable as exc:
            return unavailable(span, exc, len(checked), config)
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


# An event ready to publish: its id, its Kafka key (the session) and its JSON.
Prepared = tuple[str, bytes | None, bytes]


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
        prepared.append((event_id, session.encode() if session else None, value))
    return prepared


@contextmanager
def publishing(prepared: list[Prepared], topic: str) -> Iterator[tuple[Span, list[OutgoingMessage]]]:
    """The request's `send mcp.events` span, current while the caller publishes, and the messages
    to publish, each carrying the span's context."""
    # One PRODUCER span for the request's batch; every message carries its context, so each
    # event's consume span in the bridge becomes its child.
    publish_span = tracer().start_span(
        semconv.SPAN_PUBLISH,
        kind=SpanKind.PRODUCER,
        attributes={
            semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_KAFKA,
            semconv.MESSAGING_OPERATION_NAME: "send",
            semconv.MESSAGING_OPERATION_TYPE: "send",
            semconv.MESSAGING_DESTINATION_NAME: topic,
            semconv.MESSAGING_BATCH_MESSAGE_COUNT: len(prepared),
        },
    )
    with trace.use_span(publish_span, end_on_exit=True) as span:
        if len(prepared) == 1:
            span.set_attribute(semconv.MESSAGING_MESSAGE_ID, prepared[0][0])
        trace_headers: list[tuple[str, bytes]] = []
        propagation.inject(trace_headers)
        yield (
            span,
            [
                OutgoingMessage(key, value, [*trace_headers, (semconv.HEADER_EVENT_ID, event_id.encode())])
                for event_id, key, value in prepared
            ],
        )


def unavailable(span: Span, exc: PublishUnavailable, count: int, config: Mapping[str, Any]) -> Reply:
    """The 503 for events Kafka did not acknowledge; the publish span records why."""
    span.set_status(Status(StatusCode.ERROR, str(exc)))
    metrics.INGEST_PRODUCE_ERRORS.inc()
    refused = _refuse(503, "kafka_unavailable", count, detail=str(exc))
    return refused._replace(headers={"Retry-After": str(config["SENTINEL_RETRY_AFTER_S"])})


def accepted(prepared: list[Prepared]) -> Reply:
    metrics.INGEST_REQUESTS.labels("202").inc()
    metrics.INGEST_EVENTS_ACCEPTED.inc(len(prepared))
    return Reply(202, {"accepted": len(prepared), "event_ids": [p[0] for p in prepared]})

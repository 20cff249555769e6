"""POST /events's work, whoever serves the request: check the caller, read and validate the
events, publish them to Kafka under a `send mcp.events` span and wait for Kafka's acknowledgement.

Served by `ingest_app.events_endpoint` (the default) or by the Flask view in `routes` (when the OTel
Flask instrumentation records the server span); both answer with the `Reply` returned here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson
from opentelemetry.trace import SpanKind, Status, StatusCode

from ingest_app.auth import authorized
from ingest_app.body import BodyError, parse_events
from ingest_app.publisher import KafkaPublisher, OutgoingMessage, PublishUnavailable
from sentinel import events, lean_span, metrics, propagation, semconv


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
    """The answer to one POST /events. Raises what `request.read_body` raises (Werkzeug's
    HTTPException); the caller answers it."""
    if not authorized(request.authorization, config["SENTINEL_TOKENS"]):
        metrics.INGEST_REQUESTS.labels("401").inc()
        return Reply(
            401,
            {"error": "unauthorized", "detail": "a valid bearer token is required"},
            {"WWW-Authenticate": 'Bearer realm="sentinel"'},
        )
    limit = config["MAX_CONTENT_LENGTH"]
    try:
        body = request.read_body()
    except OSError:
        # The client stopped sending its body (the socket read timed out): free the thread.
        return _refuse(408, "body_timeout", 1, detail="the request body did not arrive in time")
    if request.content_length is None and limit is not None and len(body) >= limit:
        # A chunked body is cut at the limit by Werkzeug without an error; never accept a prefix.
        return _refuse(413, "body_too_large", 1, detail=f"the body is larger than {limit} bytes")
    try:
        candidates = parse_events(body, request.content_type)
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
    prepared: list[tuple[str, bytes | None, bytes]] = []
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

    # One PRODUCER span for the request's batch; every message carries its context, so each
    # event's consume span in the bridge becomes its child.
    publish_span = lean_span.start_span(
        semconv.SPAN_PUBLISH,
        kind=SpanKind.PRODUCER,
        attributes={
            semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_KAFKA,
            semconv.MESSAGING_OPERATION_NAME: "send",
            semconv.MESSAGING_OPERATION_TYPE: "send",
            semconv.MESSAGING_DESTINATION_NAME: publisher.topic,
            semconv.MESSAGING_BATCH_MESSAGE_COUNT: len(prepared),
        },
    )
    with lean_span.as_current(publish_span) as span:
        if len(prepared) == 1:
            span.set_attribute(semconv.MESSAGING_MESSAGE_ID, prepared[0][0])
        trace_headers: list[tuple[str, bytes]] = []
        propagation.inject(trace_headers)
        messages = [
            OutgoingMessage(key, value, [*trace_headers, (semconv.HEADER_EVENT_ID, event_id.encode())])
            for event_id, key, value in prepared
        ]
        try:
            publisher.publish(messages)
        except PublishUnavailable as exc:
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            metrics.INGEST_PRODUCE_ERRORS.inc()
            refused = _refuse(503, "kafka_unavailable", len(prepared), detail=str(exc))
            return refused._replace(headers={"Retry-After": str(config["SENTINEL_RETRY_AFTER_S"])})
    metrics.INGEST_REQUESTS.labels("202").inc()
    metrics.INGEST_EVENTS_ACCEPTED.inc(len(prepared))
    return Reply(202, {"accepted": len(prepared), "event_ids": [p[0] for p in prepared]})

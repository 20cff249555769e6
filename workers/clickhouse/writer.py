"""Write one chunk into `sentinel.mcp_events` under a `clickhouse.insert_batch` span.

The span is linked to every event's `kafka.consume` span (the OTel messaging convention for batch
processing): a parent/child edge to one event would be misleading for every other event of the chunk. Each row
stores its event's trace and span id and the insert span's ids, so a row leads to both traces.
"""

from __future__ import annotations

import time
import uuid

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from sentinel import metrics, semconv
from sentinel.propagation import span_context_from_traceparent
from sentinel.telemetry import span_limits, tracer
from workers.chunk import Chunk, ChunkEvent
from workers.clickhouse.client import dedup_supported
from workers.clickhouse.schema import EVENT_COLUMNS, QUALIFIED_EVENTS_TABLE, ensure_schema

_INSERT_SQL = f"INSERT INTO {QUALIFIED_EVENTS_TABLE} ({', '.join(EVENT_COLUMNS)}) VALUES"
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

# Server-side error codes worth retrying: the server is busy or restarting, not our data.
_TRANSIENT_CODES = {
    159,  # TIMEOUT_EXCEEDED
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS
    319,  # UNKNOWN_STATUS_OF_INSERT
    425,  # SYSTEM_ERROR
}


class TransientInsertError(RuntimeError):
    """ClickHouse could not take the rows now; retrying the same chunk later may succeed."""


class PermanentInsertError(RuntimeError):
    """ClickHouse refused the rows themselves; retrying will not help."""


def classify(exc: BaseException) -> type[RuntimeError]:
    if isinstance(exc, ch_errors.ServerException):
        return TransientInsertError if exc.code in _TRANSIENT_CODES else PermanentInsertError
    if isinstance(
        exc,
        ch_errors.NetworkError
        | ch_errors.SocketTimeoutError
        | ch_errors.UnexpectedPacketFromServerError
        | OSError
        | EOFError,
    ):
        return TransientInsertError  # network, socket, connection reset: the server is away
    return PermanentInsertError


def event_links(chunk: Chunk) -> list[Link]:
    """One link per distinct consume span among the chunk's events, carrying the per-message values.

    The events of one request share a consume span (workers/bridge/consume_span.py); one link
    to it says the same as one link per event at a fraction of the cost (the SDK builds and
    checks an attribute set per link). A link to one message carries its id and offset; a link
    to several, their count and first and last offset.
    """
    groups: dict[str, list[ChunkEvent]] = {}
    for event in chunk.events:
        groups.setdefault(event.traceparent, []).append(event)
    links = []
    for traceparent, events in groups.items():
        context = span_context_from_traceparent(traceparent, events[0].tracestate)
        if context is None:
            continue
        if len(events) == 1:
            attributes = {
                semconv.MESSAGING_MESSAGE_ID: events[0].event_id,
                semconv.MESSAGING_KAFKA_OFFSET: events[0].offset,
            }
        else:
            attributes = {
                semconv.MESSAGING_BATCH_MESSAGE_COUNT: len(events),
                semconv.KAFKA_FIRST_OFFSET: events[0].offset,
                semconv.KAFKA_LAST_OFFSET: events[-1].offset,
            }
        links.append(Link(context, attributes))
    return links


def _link_events(span: Span, chunk: Chunk) -> None:
    """Link the recording insert span to every event's consume span.

    Added once the span exists, and only when it records: at 10% sampling nine chunks in ten have
    an insert span that is not recorded, and links built for it were pure cost (the configured
    samplers are parent-based and never read links). The SDK keeps at most max_links per span and
    drops the rest silently; any overflow goes on child spans so that every event stays linked.
    """
    links = event_links(chunk)
    limit = span_limits().max_links or len(links) or 1
    for link in links[:limit]:
        span.add_link(link.context, link.attributes)
    for start in range(limit, len(links), limit):
        tracer().start_span(f"{semconv.SPAN_INSERT}.links", links=links[start : start + limit]).end()


def insert_chunk(client: Client, chunk: Chunk) -> int:
    """Insert the chunk's rows; returns how many. Raises TransientInsertError or PermanentInsertError.

    Safe to call again for the same chunk: rows are keyed by event_id, and on servers that support
    it the chunk's token makes a repeated insert a no-op.
    """
    attributes = {
        semconv.DB_SYSTEM_NAME: semconv.DB_SYSTEM_CLICKHOUSE,
        semconv.DB_NAMESPACE: QUALIFIED_EVENTS_TABLE.split(".")[0],
        semconv.DB_COLLECTION_NAME: QUALIFIED_EVENTS_TABLE.split(".")[1],
        semconv.DB_OPERATION_NAME: "INSERT",
        semconv.DB_OPERATION_BATCH_SIZE: len(chunk.events),
        semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_KAFKA,
        semconv.MESSAGING_OPERATION_NAME: "process",
        semconv.MESSAGING_OPERATION_TYPE: "process",
        semconv.MESSAGING_DESTINATION_NAME: chunk.topic,
        semconv.MESSAGING_DESTINATION_PARTITION_ID: str(chunk.partition),
        semconv.MESSAGING_BATCH_MESSAGE_COUNT: len(chunk.events),
        semconv.KAFKA_FIRST_OFFSET: chunk.first_offset,
        semconv.KAFKA_LAST_OFFSET: chunk.last_offset,
        semconv.CHUNK_ATTEMPT: chunk.attempt,
    }
    span = tracer().start_span(semconv.SPAN_INSERT, kind=SpanKind.CLIENT, attributes=attributes)
    # A failed insert is recorded below, once, with its classification.
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        if span.is_recording():
            _link_events(span, chunk)
        context = span.get_span_context()
        insert_trace = f"{context.trace_id:032x}" if context.is_valid else _ZERO_TRACE
        insert_span = f"{context.span_id:016x}" if context.is_valid else _ZERO_SPAN
        columns = _columns(chunk, insert_trace, insert_span)
        started = time.perf_counter()
        try:
            ensure_schema(client)
            settings = {"insert_deduplication_token": chunk.token} if dedup_supported(client) else {}
            client.execute(_INSERT_SQL, columns, settings=settings, columnar=True)
        except Exception as exc:
            kind = classify(exc)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{kind.__name__}: {exc}"))
            raise kind(f"insert of {chunk.token} failed: {exc}") from exc
        finally:
            metrics.WORKER_INSERT_SECONDS.observe(time.perf_counter() - started)
    metrics.WORKER_ROWS_INSERTED.inc(len(chunk.events))
    return len(chunk.events)


def _columns(chunk: Chunk, insert_trace: str, insert_span: str) -> list[list]:
    """The chunk as columns in EVENT_COLUMNS order: clickhouse-driver encodes columns without
    transposing rows, and DateTime takes epoch seconds as plain ints."""
    n = len(chunk.events)
    offsets, event_ids, traceparents, _, event_types, received_at_ms, payloads = zip(*chunk.events, strict=True)
    return [
        [uuid.UUID(event_id) for event_id in event_ids],
        [tp[3:35] if tp else _ZERO_TRACE for tp in traceparents],
        [tp[36:52] if tp else _ZERO_SPAN for tp in traceparents],
        event_types,
        [ms // 1000 for ms in received_at_ms],
        [chunk.topic] * n,
        [chunk.partition] * n,
        offsets,
        [insert_trace] * n,
        [insert_span] * n,
        payloads,
    ]

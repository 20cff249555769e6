"""Celery tasks: thin wrappers over the logic in workers.clickhouse and workers.deadletter."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task

from sentinel import metrics, semconv, settings
from workers.acks import AckChannel
from workers.celery_app import INSERT_TASK, app
from workers.chunk import Chunk, ChunkEvent
from workers.clickhouse.client import get_client
from workers.clickhouse.writer import PermanentInsertError, TransientInsertError, insert_chunk
from workers.deadletter import DeadLetter, DeadLetterProducer

log = logging.getLogger(__name__)
acks = AckChannel()
dead_letters = DeadLetterProducer()


def retry_delay(retries: int) -> float:
    """Exponential backoff, 1 s doubling to a 30 s ceiling."""
    return float(min(30, 2**retries))


# ignore_result: the bridge learns of a chunk through its ack (workers/acks.py), never through the
# result backend; a stored result cost the worker a Redis write per chunk, and the bridge a result
# subscription per chunk sent. Flower still shows each outcome, from the task-succeeded event.
@app.task(
    bind=True,
    name=INSERT_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.INSERT_MAX_RETRIES,
    ignore_result=True,
)
def insert_chunk_task(self: Task, wire: dict[str, Any]) -> dict[str, Any]:
    """Insert one chunk, then tell the owning bridge. Retries transient failures with backoff;
    dead-letters a chunk that fails for good so its partition can move on."""
    chunk = Chunk.from_wire(wire)
    outcome = "inserted"
    try:
        rows = insert_chunk(get_client(), chunk)
    except TransientInsertError as exc:
        if self.request.retries < self.max_retries:
            metrics.WORKER_INSERT_RETRIES.inc()
            log.warning("insert of %s failed, retrying: %s", chunk.token, exc)
            raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
        rows, outcome = dead_letter_chunk(chunk, f"insert failed after {self.max_retries} retries: {exc}")
    except PermanentInsertError as exc:
        rows, outcome = dead_letter_chunk(chunk, f"insert refused: {exc}")
    if chunk.ack_to:
        try:
            acks.send(chunk.ack_to, chunk.token)
        except redis.RedisError as exc:
            # Redis away: retry the task (the insert repeats as a no-op) rather than leave the
            # bridge waiting for its ack timeout.
            log.warning("cannot ack %s, retrying: %s", chunk.token, exc)
            raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
    # Logged inside the task's span: the line carries the batch trace's ids.
    log.info(
        "chunk %s %s: %d row(s), attempt %d",
        chunk.token,
        outcome,
        rows,
        chunk.attempt,
        extra={"fields": {"chunk": chunk.token, "rows": rows, "outcome": outcome}},
    )
    return {"token": chunk.token, "rows": rows, "outcome": outcome}


def dead_letter_chunk(chunk: Chunk, reason: str) -> tuple[int, str]:
    log.error("dead-lettering chunk %s: %s", chunk.token, reason)
    dead_letters.send_all(
        DeadLetter(
            value=event.payload.encode(),
            key=None,
            headers=_event_headers(event),
            reason=reason,
            stage="worker",
            source_topic=chunk.topic,
            source_partition=chunk.partition,
            source_offset=event.offset,
        )
        for event in chunk.events
    )
    metrics.WORKER_CHUNKS_DEAD_LETTERED.inc()
    return 0, "dead-lettered"


def _event_headers(event: ChunkEvent) -> list[tuple[str, bytes]]:
    """Headers for a replayable copy of the event: its id and the context of its consume span."""
    headers = [(semconv.HEADER_EVENT_ID, event.event_id.encode())]
    if event.traceparent:
        headers.append((semconv.HEADER_TRACEPARENT, event.traceparent.encode()))
    if event.tracestate:
        headers.append((semconv.HEADER_TRACESTATE, event.tracestate.encode()))
    return headers

"""Dead-letter redrive: list what is in `mcp.events.dlq` and replay it to `mcp.events`.

A replayed message carries its original value, key and headers (the `dlq.*` ones dropped) plus
`sentinel.origin`, the topic-partition-offset it first had. Replaying twice is safe: an event with
an event_id deduplicates in ClickHouse by that id, and one without gets its id from the origin,
so every replay assigns it the same one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from sentinel import semconv, settings


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(repr=False)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode("utf-8", "replace")
        return None

    @property
    def reason(self) -> str:
        return self.header(semconv.HEADER_DLQ_REASON) or ""

    @property
    def origin(self) -> str:
        """Where the message first was: kept from an earlier replay, else the dead letter's source."""
        return self.header(semconv.HEADER_ORIGIN) or (
            f"{self.header(semconv.HEADER_DLQ_SOURCE_TOPIC)}-{self.header(semconv.HEADER_DLQ_SOURCE_PARTITION)}"
            f"-{self.header(semconv.HEADER_DLQ_SOURCE_OFFSET)}"
        )

    def summary(self) -> dict[str, object]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "stage": self.header(semconv.HEADER_DLQ_STAGE),
            "origin": self.origin,
            "event_id": self.header(semconv.HEADER_EVENT_ID),
            "bytes": len(self.value or b""),
        }

    def replay_headers(self) -> list[tuple[str, bytes]]:
        kept = [(k, v) for k, v in self.headers if k not in semconv.DLQ_HEADERS and k != semconv.HEADER_ORIGIN]
        return [*kept, (semconv.HEADER_ORIGIN, self.origin.encode())]


def read_dead_letters(
    *,
    reason: str | None = None,
    start: int | None = None,
    end: int | None = None,
    topic: str = settings.DLQ_TOPIC,
    timeout_s: float = 30.0,
) -> Iterator[DeadLetterRecord]:
    """Dead letters with offsets in [start, end] (inclusive, per partition) whose reason contains
    `reason`. Reads without a consumer group commit, so listing changes nothing."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": f"sentinel-dlq-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        assignment, ends = [], {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            last = high - 1 if end is None else min(end, high - 1)
            first = low if start is None else max(start, low)
            if first <= last:
                assignment.append(TopicPartition(topic, partition, first))
                ends[partition] = last
        if not assignment:
            return
        consumer.assign(assignment)
        remaining = set(ends)
        idle_polls = 0
        while remaining and idle_polls * 0.5 < timeout_s:
            message = consumer.poll(0.5)
            if message is None:
                idle_polls += 1
                continue
            idle_polls = 0
            if message.error():
                continue
            partition, offset = message.partition(), message.offset()
            if offset > ends.get(partition, -1):
                remaining.discard(partition)
                continue
            record = DeadLetterRecord(partition, offset, message.key(), message.value(), list(message.headers() or []))
            if offset == ends[partition]:
                remaining.discard(partition)
            if reason is None or reason in record.reason:
                yield record
    finally:
        consumer.close()


def replay(records: Iterator[DeadLetterRecord], *, topic: str = settings.EVENTS_TOPIC, timeout_s: float = 30.0) -> int:
    """Re-publish records to `topic`; returns how many Kafka acknowledged. Raises RuntimeError otherwise."""
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "enable.idempotence": True, "acks": "all"})
    errors: list[KafkaError] = []
    sent = 0
    for record in records:
        producer.produce(
            topic,
            value=record.value,
            key=record.key,
            headers=record.replay_headers(),
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
        sent += 1
        producer.poll(0)
    remaining = producer.flush(timeout_s)
    if errors or remaining:
        raise RuntimeError(f"replay incomplete: {remaining} unacknowledged, errors {errors[:1]}")
    return sent

"""Dead letters: a message that can never be processed goes to `mcp.events.dlq` with why, where it
came from and its original headers, so it can be inspected and replayed; the pipeline moves on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer

from sentinel import semconv, settings

# Headers a dead letter must not inherit twice when a replayed message fails again.
_DLQ_KEYS = semconv.DLQ_HEADERS
MAX_REASON_BYTES = 1024


@dataclass(frozen=True)
class DeadLetter:
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    stage: str  # "bridge" (invalid message) or "worker" (chunk failed for good)
    source_topic: str
    source_partition: int
    source_offset: int

    def record_headers(self) -> list[tuple[str, bytes]]:
        kept = [(k, v if v is not None else b"") for k, v in self.headers if k not in _DLQ_KEYS]
        return [
            *kept,
            (semconv.HEADER_DLQ_REASON, self.reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]),
            (semconv.HEADER_DLQ_STAGE, self.stage.encode()),
            (semconv.HEADER_DLQ_SOURCE_TOPIC, self.source_topic.encode()),
            (semconv.HEADER_DLQ_SOURCE_PARTITION, str(self.source_partition).encode()),
            (semconv.HEADER_DLQ_SOURCE_OFFSET, str(self.source_offset).encode()),
            (semconv.HEADER_DLQ_FAILED_AT, str(int(time.time() * 1000)).encode()),
        ]


class DeadLetterProducer:
    """Idempotent producer for the dead-letter topic, created lazily in the process that uses it."""

    def __init__(self, topic: str = settings.DLQ_TOPIC) -> None:
        self.topic = topic
        self._producer: Producer | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def producer(self) -> Producer:
        if self._producer is None or self._pid != os.getpid():
            with self._lock:
                self._producer = Producer(
                    {
                        "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
                        "enable.idempotence": True,
                        "acks": "all",
                        "linger.ms": 5,
                        "message.max.bytes": 8 * 1024 * 1024,
                        # Unbounded delivery retries: a dead letter is only "done" once Kafka has it.
                        "message.timeout.ms": 0,
                    }
                )
                self._pid = os.getpid()
        return self._producer

    def send(self, letter: DeadLetter, on_done: Callable[[KafkaError | None], None]) -> None:
        """Queue one dead letter; `on_done` runs from `poll()` once Kafka acknowledged it (or failed)."""
        self.producer.produce(
            self.topic,
            value=letter.value,
            key=letter.key,
            headers=letter.record_headers(),
            on_delivery=lambda err, _msg: on_done(err),
        )

    def send_all(self, letters: Iterable[DeadLetter], timeout_s: float = 30.0) -> None:
        """Produce and wait for every letter. Raises RuntimeError if any was not acknowledged."""
        errors: list[KafkaError] = []
        count = 0
        for letter in letters:
            self.send(letter, lambda err: errors.append(err) if err is not None else None)
            count += 1
        remaining = self.producer.flush(timeout_s)
        if errors or remaining:
            raise RuntimeError(
                f"dead-lettering {count} message(s) failed: {remaining} unacknowledged, errors {errors[:1]}"
            )

    def poll(self, timeout: float = 0.0) -> None:
        if self._producer is not None:
            self._producer.poll(timeout)

    def flush(self, timeout: float = 30.0) -> int:
        return self._producer.flush(timeout) if self._producer is not None else 0

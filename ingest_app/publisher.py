"""Publish accepted events to Kafka and wait until Kafka has them (acks=all, idempotent).

The producer is created lazily in the serving process: gunicorn forks workers after import, and
librdkafka's threads do not survive a fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer

from sentinel import settings


class PublishUnavailable(RuntimeError):
    """Kafka did not acknowledge every event in time; the client should retry later."""


@dataclass(frozen=True)
class OutgoingMessage:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def producer_config(timeout_s: float) -> dict[str, object]:
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
        "message.timeout.ms": int(timeout_s * 1000),
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.max.bytes": 4 * 1024 * 1024,
    }


class KafkaPublisher:
    def __init__(
        self, topic: str = settings.EVENTS_TOPIC, timeout_s: float = settings.INGEST_PUBLISH_TIMEOUT_S
    ) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer: Producer | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._ready_until = 0.0

    @property
    def producer(self) -> Producer:
        if self._producer is None or self._pid != os.getpid():
            with self._lock:
                if self._producer is None or self._pid != os.getpid():
                    self._producer = Producer(producer_config(self.timeout_s))
                    self._pid = os.getpid()
        return self._producer

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Produce every message and block until each is acknowledged.

        Raises PublishUnavailable if any message fails or is not acknowledged within the timeout;
        some of the batch may then be in Kafka (the client retries with the same event_ids).
        """
        producer = self.producer
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                errors.append(err)

        deadline = time.monotonic() + self.timeout_s
        for message in messages:
            while True:
                try:
                    producer.produce(
                        self.topic,
                        value=message.value,
                        key=message.key,
                        headers=message.headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    # Local queue full: let librdkafka drain it, within our deadline.
                    if time.monotonic() > deadline:
                        raise PublishUnavailable("Kafka producer queue is full") from None
                    producer.poll(0.05)
                except KafkaException as exc:
                    raise PublishUnavailable(f"Kafka refused the message: {exc}") from exc
        remaining = producer.flush(max(0.0, deadline - time.monotonic()) + 1.0)
        if errors:
            raise PublishUnavailable(f"Kafka did not acknowledge {len(errors)} event(s): {errors[0].str()}")
        if remaining:
            raise PublishUnavailable(f"Kafka did not acknowledge {remaining} event(s) in {self.timeout_s:.0f}s")

    def ready(self) -> bool:
        """Whether the broker answers metadata requests for our topic (cached for a second)."""
        now = time.monotonic()
        if now < self._ready_until:
            return True
        try:
            meta = self.producer.list_topics(self.topic, timeout=2)
        except KafkaException:
            return False
        topic = meta.topics.get(self.topic)
        ok = bool(meta.brokers) and topic is not None and topic.error is None
        if ok:
            self._ready_until = now + 1.0
        return ok

"""Publish accepted events to Kafka and wait until Kafka has them (acks=all, idempotent).

One producer per process, shared by every request in flight. A background thread serves delivery
reports; each request waits only for its own messages, so concurrent requests batch together in
librdkafka (linger.ms) instead of flushing each other; each waits in its own thread. The producer
is created lazily in the serving process: the server forks its workers, and librdkafka's threads
do not survive a fork.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException, Producer

from sentinel import settings

# Where `ingest_app.init_app` keeps the app's publisher (Flask's `app.extensions`).
APP_EXTENSION = "sentinel.publisher"


class PublishUnavailable(RuntimeError):
    """Kafka did not acknowledge every event in time; the client should retry later."""


class OutgoingMessage(NamedTuple):
    # A NamedTuple, not a dataclass: one is built per event, and a tuple is three times cheaper.
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def producer_config(timeout_s: float) -> dict[str, object]:
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
        "enable.idempotence": True,
        "acks": "all",
        # Concurrent requests share a batch, at the price of waiting for it (settings says more).
        "linger.ms": settings.INGEST_KAFKA_LINGER_MS,
        "compression.type": settings.KAFKA_COMPRESSION,
        "message.timeout.ms": int(timeout_s * 1000),
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.max.bytes": 4 * 1024 * 1024,
        "batch.num.messages": 10_000,
    }


class _Delivery:
    """Delivery reports of one request. Only the report thread counts (no lock per message); the
    request thread says how many to expect once it has produced them, and waits in `wait`.

    The wait is a plain lock, held from the start and released by whichever side sees the last
    report: acquiring it again is one C call. threading.Event's wait and set run a Condition in
    Python: 16 threads publishing single events through one producer spent ~20 us more CPU per
    publish with it.
    """

    __slots__ = ("_done", "delivered", "error", "expected")

    def __init__(self) -> None:
        self.delivered = 0
        self.expected: int | None = None
        self.error: KafkaError | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def __call__(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None and self.error is None:
            self.error = err
        self.delivered += 1
        expected = self.expected
        if expected is not None and self.delivered >= expected:
            self._release()

    def expect(self, count: int) -> None:
        self.expected = count
        if self.delivered >= count:  # the reports may all have arrived already
            self._release()

    def _release(self) -> None:
        # Both sides can see the last report (the report thread in __call__, the request thread
        # in expect, when it races the last report): the second release finds the lock free.
        with contextlib.suppress(RuntimeError):
            self._done.release()

    def wait(self, timeout_s: float) -> bool:
        """Whether every expected report arrived within `timeout_s`."""
        return self._done.acquire(timeout=timeout_s)


class KafkaPublisher:
    def __init__(
        self,
        topic: str = settings.EVENTS_TOPIC,
        timeout_s: float = settings.INGEST_PUBLISH_TIMEOUT_S,
        producer: Producer | None = None,
    ) -> None:
        """`producer`, when given, is used as it is, and its caller polls it (`serve_reports`):
        no report thread is started for it."""
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer: Producer | None = producer
        self._pid = 0 if producer is None else os.getpid()
        self._lock = threading.Lock()
        self._ready_until = 0.0

    @property
    def producer(self) -> Producer:
        if self._producer is None or self._pid != os.getpid():
            with self._lock:
                if self._producer is None or self._pid != os.getpid():
                    self._producer = Producer(producer_config(self.timeout_s))
                    self._pid = os.getpid()
                    threading.Thread(
                        target=self._serve_reports,
                        args=(self._producer,),
                        daemon=True,
                        name="kafka-delivery-reports",
                    ).start()
        return self._producer

    @staticmethod
    def _serve_reports(producer: Producer) -> None:
        while True:
            producer.poll(0.1)

    def serve_reports(self, timeout_s: float) -> None:
        """Serve the producer's delivery reports once: what the report thread does in a loop."""
        self.producer.poll(timeout_s)
        self._finished.wake_loops()

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Produce every message and block until each is acknowledged.

        Raises PublishUnavailable if any message fails or is not acknowledged within the timeout;
        some of the batch may then be in Kafka (the client retries with the same event_ids).
        """
        producer = self.producer
        delivery = _Delivery()
        deadline = time.monotonic() + self.timeout_s
        self._produce_all(producer, messages, delivery, deadline)
        delivery.expect(len(messages))
        # message.timeout.ms bounds every delivery report; the extra second covers the report itself.
        if not delivery.wait(max(0.0, deadline - time.monotonic()) + 1.0):
            raise self._unacknowledged(len(messages) - delivery.delivered)
        if delivery.error is not None:
            raise self._refused(delivery.error)

    def _produce_all(
        self,
        producer: Producer,
        messages: Sequence[OutgoingMessage],
        on_delivery: _Delivery,
        deadline: float,
    ) -> None:
        for message in messages:
            while not self._produce(producer, message, on_delivery, deadline):
                time.sleep(0.01)

    def _produce(self, producer: Producer, message: OutgoingMessage, on_delivery: _Delivery, deadline: float) -> bool:
        """Hand one message to librdkafka; False when its local queue is full (try again shortly:
        the report thread drains it)."""
        try:
            producer.produce(
                self.topic, value=message.value, key=message.key, headers=message.headers, on_delivery=on_delivery
            )
        except BufferError:
            if time.monotonic() > deadline:
                raise PublishUnavailable("Kafka producer queue is full") from None
            return False
        except KafkaException as exc:
            raise PublishUnavailable(f"Kafka refused the message: {exc}") from exc
        return True

    def _unacknowledged(self, missing: int) -> PublishUnavailable:
        return PublishUnavailable(f"Kafka did not acknowledge {missing} event(s) in {self.timeout_s:.0f}s")

    @staticmethod
    def _refused(error: KafkaError) -> PublishUnavailable:
        return PublishUnavailable(f"Kafka did not acknowledge the events: {error.str()}")

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

"""Small waits and reads the end-to-end tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, TopicPartition

from sentinel import settings

T = TypeVar("T")


def wait_until(probe: Callable[[], T], *, timeout_s: float, interval_s: float = 0.2, what: str) -> T:
    """Call `probe` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def committed_offsets(consumer: Consumer) -> dict[int, int]:
    """The bridge group's committed offset per partition (-1001 when none), read without joining the group."""
    partitions = [TopicPartition(settings.EVENTS_TOPIC, p) for p in range(settings.EVENTS_TOPIC_PARTITIONS)]
    return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}


def group_reader() -> Consumer:
    return Consumer(
        {"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "group.id": settings.BRIDGE_GROUP, "enable.auto.commit": False}
    )

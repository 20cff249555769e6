"""bench.publish_cost on the real broker: every counted publish is a message Kafka holds."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition

from bench import publish_cost
from sentinel import settings
from sentinel.stack import kafka


def _log_end(topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "group.id": f"t-{uuid.uuid4().hex[:8]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)
    finally:
        consumer.close()


def test_the_publisher_is_measured_on_acknowledged_messages() -> None:
    topic = f"sentinel.test.publish-cost.{uuid.uuid4().hex[:8]}"
    kafka.ensure_topic(topic, settings.EVENTS_TOPIC_PARTITIONS)
    kafka.ensure_topic(topic, settings.EVENTS_TOPIC_PARTITIONS)  # a second call finds it
    result = publish_cost.measure(threads=2, seconds=0.5, events=3, topic=topic)
    assert result["publishes"] > 0 and result["publishes_per_s"] > 0
    assert result["cpu_us_per_publish"] > 0
    assert set(result) >= {"publishing_threads_us", "librdkafka_threads_us", "other_python_threads_us"}
    # The warm-up publish and every counted one, three messages each, each acknowledged once.
    assert _log_end(topic) == 3 * (1 + result["publishes"])

"""Real Kafka: headers survive a round trip, and a consumer group's commit can be read back."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from sentinel import settings


def _fresh_topic() -> str:
    topic = f"sentinel.test.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    return topic


def test_topics_exist_with_partitions() -> None:
    meta = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP}).list_topics(timeout=10)
    assert len(meta.topics[settings.EVENTS_TOPIC].partitions) == settings.EVENTS_TOPIC_PARTITIONS > 1
    assert settings.DLQ_TOPIC in meta.topics


def test_produce_consume_commit_and_read_committed() -> None:
    topic = _fresh_topic()
    group = f"sentinel-test-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "enable.idempotence": True})
    for i in range(3):
        producer.produce(
            topic,
            value=f"v{i}".encode(),
            headers=[("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"), ("n", str(i).encode())],
        )
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got = []
    for _ in range(100):
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        got.append(message)
        if len(got) == 3:
            break
    assert [m.value() for m in got] == [b"v0", b"v1", b"v2"]
    assert dict(got[1].headers())["n"] == b"1"
    assert dict(got[0].headers())["traceparent"].startswith(b"00-aaaa")
    consumer.commit(offsets=[TopicPartition(topic, 0, got[-1].offset() + 1)], asynchronous=False)
    consumer.close()

    reader = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "group.id": group})
    committed = reader.committed([TopicPartition(topic, 0)], timeout=10)
    reader.close()
    assert committed[0].offset == 3


def test_the_local_broker_caps_each_partition_by_size() -> None:
    # Time alone (7 days) let repeated benchmark runs fill the disk (settings.KAFKA_RETENTION_BYTES).
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    broker = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([broker])[broker].result(timeout=30)
    assert int(configs["log.retention.bytes"].value) == settings.KAFKA_RETENTION_BYTES > 0
    assert int(configs["log.segment.bytes"].value) < settings.KAFKA_RETENTION_BYTES
    topic = ConfigResource(ResourceType.TOPIC, settings.EVENTS_TOPIC)
    assert int(admin.describe_configs([topic])[topic].result(timeout=30)["retention.bytes"].value) == (
        settings.KAFKA_RETENTION_BYTES
    )

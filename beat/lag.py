"""Consumer lag of the bridge's group, per partition: log end offset minus committed offset."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from sentinel import metrics, settings

_reader: Consumer | None = None


def _consumer() -> Consumer:
    # Reads the group's commits without joining the group (no subscribe), so it never rebalances it.
    global _reader
    if _reader is None:
        _reader = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
                "group.id": settings.BRIDGE_GROUP,
                "enable.auto.commit": False,
            }
        )
    return _reader


def consumer_lag(topic: str = settings.EVENTS_TOPIC) -> dict[int, int]:
    """Lag per partition, also set on the `sentinel_consumer_lag` gauge."""
    consumer = _consumer()
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    lag = {}
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        position = tp.offset if tp.offset >= 0 else low
        lag[tp.partition] = max(0, high - position)
        metrics.CONSUMER_LAG.labels(str(tp.partition)).set(lag[tp.partition])
    return lag

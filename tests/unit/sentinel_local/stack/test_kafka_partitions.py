"""The events topic must have the configured partition count, or the stack says how to fix it."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import PartitionMetadata, TopicMetadata

from sentinel import settings
from sentinel_local.stack.kafka import _check_partitions
from sentinel_local.stack.runner import ServiceError


def _topic(partitions: int) -> TopicMetadata:
    topic = TopicMetadata()
    topic.topic = settings.EVENTS_TOPIC
    topic.partitions = {p: PartitionMetadata() for p in range(partitions)}
    return topic


def test_missing_topic_is_left_to_be_created() -> None:
    _check_partitions(None)


def test_configured_count_passes() -> None:
    _check_partitions(_topic(settings.EVENTS_TOPIC_PARTITIONS))


def test_other_count_is_refused_with_both_ways_out() -> None:
    found = settings.EVENTS_TOPIC_PARTITIONS + 2
    with pytest.raises(ServiceError) as refused:
        _check_partitions(_topic(found))
    message = str(refused.value)
    assert f"has {found} partitions" in message
    assert f"SENTINEL_EVENTS_TOPIC_PARTITIONS={found}" in message
    assert str(settings.STACK_DIR / "kafka") in message

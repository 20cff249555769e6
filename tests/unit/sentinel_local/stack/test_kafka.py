"""sentinel_local.stack.kafka: a KRaft cluster id the storage tool accepts, and the events topic's
partition count checked (or the stack says how to fix it)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import PartitionMetadata, TopicMetadata

from sentinel import settings
from sentinel_local.stack import kafka
from sentinel_local.stack.kafka import _check_partitions
from sentinel_local.stack.runner import ServiceError

DASHED = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # base64url of 0b111110... starts with '-'
PLAIN = uuid.UUID(bytes=bytes([0x10]) + bytes(15))


def test_an_id_starting_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: Iterator[uuid.UUID] = iter([DASHED, PLAIN])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(DASHED.bytes).decode().startswith("-")
    assert kafka.new_cluster_id() == base64.urlsafe_b64encode(PLAIN.bytes).decode().rstrip("=")


def test_ids_are_22_characters_of_base64url() -> None:
    for _ in range(200):
        cluster_id = kafka.new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert base64.urlsafe_b64decode(cluster_id + "==")


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


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_three_nodes_share_one_quorum_and_keep_three_replicas_of_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "KAFKA_MIN_INSYNC_REPLICAS", 2)
    second = _properties(kafka.server_properties(2, 3, Path("/data")))
    host, port, controller = settings.HOST, settings.KAFKA_PORT, settings.KAFKA_CONTROLLER_PORT
    assert second["node.id"] == "2"
    assert second["controller.quorum.voters"] == ",".join(f"{n + 1}@{host}:{controller + 2 * n}" for n in range(3))
    assert second["listeners"] == f"PLAINTEXT://{host}:{port + 2},CONTROLLER://{host}:{controller + 2}"
    for key in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert second[key] == "3"
    assert second["min.insync.replicas"] == "2"
    single = _properties(kafka.server_properties(1, 1, Path("/data")))
    assert single["offsets.topic.replication.factor"] == "1"
    assert single["controller.quorum.voters"] == f"1@{host}:{controller}"

"""Large events through a bridge, RabbitMQ, a worker and ClickHouse: chunks stay under the broker's
message limit, so no partition stops.

RabbitMQ refuses a message larger than its max_message_size (128 MiB here) at every attempt. Chunks
closed only by count and age once held 413 events of 400 KB (ingest takes events up to 512 KiB),
a 165 MB message, and the bridge re-sent it every second while its partition waited. Here the
bridge reads a 144 MB backlog of such events with its chunk timers far away, so only the byte bound
(SENTINEL_CHUNK_MAX_BYTES) can close a chunk before the whole backlog is in it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ingest_app.publisher import producer_config
from sentinel import semconv, settings
from sentinel_local import processes
from tests.e2e.helpers import wait_until
from tests.private_bridge import PrivateBridge
from workers.chunk import EVENT_WIRE_OVERHEAD
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

EVENTS = 360
BLOB_BYTES = 400_000  # 360 x 400 KB = 144 MB, more than RabbitMQ's 128 MiB


@pytest.fixture
def topic(pipeline: None) -> Iterator[str]:
    name = f"sentinel.test.large.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=30)
    try:
        yield name
    finally:
        admin.delete_topics([name])[name].result(timeout=30)


def _produce(topic: str, event_type: str) -> int:
    """The events as ingest would write them; returns the size of one value."""
    producer = Producer(producer_config(settings.INGEST_PUBLISH_TIMEOUT_S))
    failures: list[str] = []
    size = 0
    for i in range(EVENTS):
        event_id = str(uuid.uuid4())
        event = {"type": event_type, "event_id": event_id, "attributes": {"i": i, "blob": "x" * BLOB_BYTES}}
        value = orjson.dumps(event)
        size = max(size, len(value))
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    headers=[(semconv.HEADER_EVENT_ID, event_id.encode())],
                    on_delivery=lambda err, _msg: failures.append(str(err)) if err else None,
                )
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0 and not failures, f"producing the large events failed: {failures[:3]}"
    return size


def _chunks_of(topic: str) -> dict[str, int]:
    """Rows per chunk the worker inserted from `topic`, by chunk token (its log lines carry both)."""
    chunks: dict[str, int] = {}
    for line in processes.get("worker").log_path.read_text(errors="replace").splitlines():
        if f'"{topic}-' not in line:
            continue
        fields = json.loads(line)
        if fields.get("outcome") == "inserted" and fields.get("chunk", "").startswith(f"{topic}-"):
            chunks[fields["chunk"]] = fields["rows"]
    return chunks


def test_chunks_of_large_events_stay_under_the_byte_bound_and_all_arrive(topic: str) -> None:
    event_type = f"large-{uuid.uuid4().hex[:8]}"
    value_bytes = _produce(topic, event_type)
    # One consumer whose chunks close by count or size only: its timers are far beyond the time it
    # takes to read the backlog, and the idle close ends the last chunk.
    bridge = PrivateBridge(
        "bridge-large-events-test",
        topic,
        f"sentinel-test-{uuid.uuid4().hex[:8]}",
        SENTINEL_BRIDGE_CONSUMERS="1",
        SENTINEL_CHUNK_MAX_WAIT_S="120",
        SENTINEL_CHUNK_MAX_IDLE_S="2",
    )
    client = new_client()
    try:
        bridge.up()
        wait_until(
            lambda: (
                client.execute(
                    f"SELECT uniqExact(event_id) FROM {QUALIFIED_EVENTS_TABLE} WHERE event_type = %(t)s",
                    {"t": event_type},
                )[0][0]
                == EVENTS
            ),
            what=f"all {EVENTS} large events in ClickHouse (bridge log: {bridge.log_path})",
            timeout_s=120,
        )
        log = bridge.log_path.read_text(errors="replace")
    finally:
        bridge.down()
    assert "cannot send chunk" not in log, "the broker refused a chunk"
    per_chunk = settings.CHUNK_MAX_BYTES // (value_bytes + EVENT_WIRE_OVERHEAD)
    chunks = wait_until(
        lambda: (found := _chunks_of(topic)) and sum(found.values()) >= EVENTS and found,
        what="the worker's log lines for every chunk",
        timeout_s=30,
    )
    assert sum(chunks.values()) == EVENTS, chunks
    assert max(chunks.values()) <= per_chunk, f"a chunk held more than {per_chunk} events: {chunks}"
    assert len(chunks) >= EVENTS // per_chunk


@pytest.fixture(autouse=True)
def _forget_the_rows() -> Iterator[None]:
    """Delete this test's 144 MB of rows afterwards: later tests read payloads from the same table."""
    yield
    client = new_client()
    client.execute(f"ALTER TABLE {QUALIFIED_EVENTS_TABLE} DELETE WHERE startsWith(event_type, %(p)s)", {"p": "large-"})
    database, table = QUALIFIED_EVENTS_TABLE.split(".")
    wait_until(
        lambda: (
            client.execute(
                "SELECT count() FROM system.mutations WHERE database = %(d)s AND table = %(t)s AND is_done = 0",
                {"d": database, "t": table},
            )[0][0]
            == 0
        ),
        what="the large events' rows to be deleted",
        timeout_s=120,
    )

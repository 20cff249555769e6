"""workers.bridge.chunker: per-partition chunks closed by count, size, age or quiet."""

from __future__ import annotations

import pytest

from workers.bridge.chunker import Chunker
from workers.chunk import ChunkEvent

TOPIC = "mcp.events"


def _event(offset: int) -> ChunkEvent:
    return ChunkEvent(offset, f"id-{offset}", "", "", "tool_call", 1_700_000_000_000, "{}")


def _chunker(max_events: int = 3, max_wait_s: float = 1.0) -> Chunker:
    return Chunker(TOPIC, max_events=max_events, max_wait_s=max_wait_s, ack_to="acks:bridge-1")


def test_max_events_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_events"):
        _chunker(max_events=0)


def test_closes_exactly_at_max_events() -> None:
    chunker = _chunker(max_events=3)
    assert chunker.add(0, _event(10), now=0.0) is None
    assert chunker.add(0, _event(11), now=0.0) is None
    chunk = chunker.add(0, _event(12), now=0.0)
    assert chunk is not None
    assert [e.offset for e in chunk.events] == [10, 11, 12]
    assert not chunker.is_open(0)


def test_chunk_records_topic_partition_offsets_ack_and_token() -> None:
    chunker = _chunker(max_events=2)
    chunker.add(4, _event(100), now=0.0)
    chunk = chunker.add(4, _event(105), now=0.0)
    assert chunk is not None
    assert chunk.topic == TOPIC
    assert chunk.partition == 4
    assert (chunk.first_offset, chunk.last_offset) == (100, 105)
    assert chunk.ack_to == "acks:bridge-1"
    assert chunk.attempt == 1
    assert chunk.token == "mcp.events-4-100-105"


def test_next_event_after_a_close_opens_a_new_chunk() -> None:
    chunker = _chunker(max_events=1)
    first = chunker.add(0, _event(1), now=0.0)
    second = chunker.add(0, _event(2), now=0.0)
    assert first is not None and second is not None
    assert (first.first_offset, second.first_offset) == (1, 2)


def test_due_closes_only_chunks_older_than_max_wait() -> None:
    chunker = _chunker(max_events=100, max_wait_s=1.0)
    chunker.add(0, _event(0), now=10.0)
    chunker.add(1, _event(0), now=10.5)
    assert chunker.due(10.9) == []
    closed = chunker.due(11.0)
    assert [c.partition for c in closed] == [0]
    assert not chunker.is_open(0)
    assert chunker.is_open(1)
    assert [c.partition for c in chunker.due(11.5)] == [1]


def test_age_counts_from_the_first_event_not_the_last() -> None:
    chunker = _chunker(max_events=100, max_wait_s=1.0)
    chunker.add(0, _event(0), now=0.0)
    chunker.add(0, _event(1), now=0.9)
    closed = chunker.due(1.0)
    assert len(closed) == 1
    assert [e.offset for e in closed[0].events] == [0, 1]


def test_partitions_are_chunked_independently() -> None:
    chunker = _chunker(max_events=2)
    assert chunker.add(0, _event(0), now=0.0) is None
    assert chunker.add(1, _event(50), now=0.0) is None
    chunk = chunker.add(0, _event(1), now=0.0)
    assert chunk is not None
    assert chunk.partition == 0
    assert [e.offset for e in chunk.events] == [0, 1]
    assert chunker.is_open(1)
    other = chunker.add(1, _event(51), now=0.0)
    assert other is not None
    assert [e.offset for e in other.events] == [50, 51]


def test_drop_forgets_open_chunks_of_those_partitions() -> None:
    chunker = _chunker(max_events=10)
    chunker.add(0, _event(0), now=0.0)
    chunker.add(1, _event(0), now=0.0)
    chunker.drop([0, 7])
    assert not chunker.is_open(0)
    assert chunker.is_open(1)
    assert [c.partition for c in chunker.close_all()] == [1]
    # A dropped partition starts afresh: nothing of before the drop comes back.
    chunker.add(0, _event(3), now=0.0)
    assert [e.offset for e in chunker.close_all()[0].events] == [3]


def test_close_all_returns_every_open_chunk_and_empties() -> None:
    chunker = _chunker(max_events=10)
    chunker.add(0, _event(0), now=0.0)
    chunker.add(0, _event(1), now=0.0)
    chunker.add(2, _event(7), now=0.0)
    closed = {c.partition: c for c in chunker.close_all()}
    assert set(closed) == {0, 2}
    assert (closed[0].first_offset, closed[0].last_offset) == (0, 1)
    assert (closed[2].first_offset, closed[2].last_offset) == (7, 7)
    assert chunker.close_all() == []
    assert chunker.due(1e9) == []


def _idle_chunker(max_wait_s: float = 1.0, max_idle_s: float = 0.15) -> Chunker:
    return Chunker(TOPIC, max_events=100, max_wait_s=max_wait_s, max_idle_s=max_idle_s, ack_to="acks:bridge-1")


def test_a_chunk_its_partition_stopped_feeding_closes_when_idle() -> None:
    chunker = _idle_chunker()
    chunker.add(0, _event(0), now=10.0)
    chunker.add(0, _event(1), now=10.05)
    assert chunker.due(10.19) == []
    closed = chunker.due(10.21)
    assert [[e.offset for e in c.events] for c in closed] == [[0, 1]]


def test_a_chunk_fed_at_every_poll_waits_for_its_age() -> None:
    chunker = _idle_chunker(max_wait_s=0.5)
    for step in range(10):  # an event every 50 ms, as fetches of a steady stream bring them
        now = step * 0.05
        chunker.add(0, _event(step), now=now)
        assert chunker.due(now + 0.01) == []
    closed = chunker.due(0.5)
    assert [len(c.events) for c in closed] == [10]


def test_idleness_is_per_partition() -> None:
    chunker = _idle_chunker()
    chunker.add(0, _event(0), now=0.0)
    chunker.add(1, _event(0), now=0.0)
    chunker.add(1, _event(1), now=0.1)
    assert [c.partition for c in chunker.due(0.2)] == [0]
    assert chunker.is_open(1)


def test_a_paused_consumer_closes_chunks_by_age_only() -> None:
    chunker = _idle_chunker(max_wait_s=1.0)
    chunker.add(0, _event(0), now=0.0)
    assert chunker.due(0.5, reading=False) == []
    # Reading again: the partition has had no chance to feed the chunk, so its quiet starts now.
    chunker.restart_idle_clocks(0.5)
    assert chunker.due(0.6) == []
    assert [c.partition for c in chunker.due(0.65)] == [0]
    chunker.add(0, _event(1), now=2.0)
    assert [c.partition for c in chunker.due(3.0, reading=False)] == [0]


def test_without_max_idle_only_count_and_age_close() -> None:
    chunker = _chunker(max_events=100, max_wait_s=1.0)
    chunker.add(0, _event(0), now=0.0)
    assert chunker.due(0.99) == []


def _sized_chunker(max_bytes: int, max_events: int = 100) -> Chunker:
    return Chunker(TOPIC, max_events=max_events, max_wait_s=1.0, max_bytes=max_bytes, ack_to="acks:bridge-1")


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        _sized_chunker(max_bytes=0)


def test_an_event_that_would_overflow_the_chunk_closes_it_and_begins_the_next() -> None:
    chunker = _sized_chunker(max_bytes=100)
    assert chunker.add(0, _event(0), now=0.0, size=40) is None
    assert chunker.add(0, _event(1), now=0.0, size=60) is None  # exactly full still fits
    closed = chunker.add(0, _event(2), now=0.0, size=1)
    assert closed is not None
    assert [e.offset for e in closed.events] == [0, 1]
    assert [[e.offset for e in c.events] for c in chunker.close_all()] == [[2]]


def test_bytes_are_counted_per_partition_and_restart_with_each_chunk() -> None:
    chunker = _sized_chunker(max_bytes=100)
    chunker.add(0, _event(0), now=0.0, size=70)
    assert chunker.add(1, _event(0), now=0.0, size=70) is None
    closed = chunker.add(0, _event(1), now=0.0, size=70)
    assert closed is not None and closed.partition == 0
    # Partition 0's new chunk holds 70 bytes: 30 more fit, 31 do not.
    assert chunker.add(0, _event(2), now=0.0, size=30) is None
    closed = chunker.add(0, _event(3), now=0.0, size=1)
    assert closed is not None and [e.offset for e in closed.events] == [1, 2]


def test_an_event_larger_than_max_bytes_travels_alone() -> None:
    chunker = _sized_chunker(max_bytes=100)
    chunker.add(0, _event(0), now=0.0, size=10)
    before = chunker.add(0, _event(1), now=0.0, size=500)
    assert before is not None and [e.offset for e in before.events] == [0]
    alone = chunker.add(0, _event(2), now=0.0, size=10)
    assert alone is not None and [e.offset for e in alone.events] == [1]


def test_the_count_still_closes_a_chunk_within_its_bytes() -> None:
    chunker = _sized_chunker(max_bytes=1_000, max_events=2)
    chunker.add(0, _event(0), now=0.0, size=10)
    closed = chunker.add(0, _event(1), now=0.0, size=10)
    assert closed is not None and [e.offset for e in closed.events] == [0, 1]

"""workers.bridge.watermark: commit only below what every chunk and dead letter has settled."""

from __future__ import annotations

import pytest

from workers.bridge.watermark import PartitionWatermark, Watermarks


def _chunk_dlq_chunk() -> PartitionWatermark:
    """Chunk 0-9, a dead letter at 10, chunk 11-20, all consumed."""
    mark = PartitionWatermark()
    mark.open(0)
    for offset in range(10):
        mark.consumed(offset)
    mark.open(10)
    mark.consumed(10)
    mark.open(11)
    for offset in range(11, 21):
        mark.consumed(offset)
    return mark


def test_none_before_anything_consumed() -> None:
    assert PartitionWatermark().committable() is None
    assert Watermarks().committable() == {}


def test_nothing_pending_commits_one_past_the_last_consumed() -> None:
    mark = PartitionWatermark()
    mark.consumed(41)
    assert mark.committable() == 42


def test_an_unsettled_unit_holds_the_watermark_at_its_first_offset() -> None:
    mark = PartitionWatermark()
    mark.open(5)
    mark.consumed(9)
    assert mark.committable() == 5
    assert mark.pending == 1


def test_out_of_order_acks_across_a_dead_letter_gap() -> None:
    mark = _chunk_dlq_chunk()
    assert mark.committable() == 0
    assert mark.pending == 3

    assert mark.settle(11) is True  # the newest chunk first: the oldest still holds
    assert mark.committable() == 0
    assert mark.settle(10) is True  # the dead letter: still held by chunk 0-9
    assert mark.committable() == 0
    assert mark.pending == 1

    assert mark.settle(0) is True  # the oldest settles: jump past everything
    assert mark.committable() == 21
    assert mark.pending == 0


def test_watermark_moves_step_by_step_when_acks_arrive_in_order() -> None:
    mark = _chunk_dlq_chunk()
    mark.settle(0)
    assert mark.committable() == 10
    mark.settle(10)
    assert mark.committable() == 11
    mark.settle(11)
    assert mark.committable() == 21


def test_settle_of_an_unknown_unit_returns_false() -> None:
    mark = _chunk_dlq_chunk()
    assert mark.settle(5) is False  # inside a chunk, not its first offset
    assert mark.settle(99) is False
    assert mark.committable() == 0


def test_settle_again_after_the_unit_was_committed_returns_false() -> None:
    mark = PartitionWatermark()
    mark.open(0)
    mark.consumed(0)
    assert mark.settle(0) is True
    assert mark.committable() == 1
    assert mark.settle(0) is False  # a duplicate ack of a chunk already behind the watermark
    assert mark.committable() == 1


def test_open_out_of_offset_order_raises() -> None:
    mark = PartitionWatermark()
    mark.open(10)
    with pytest.raises(ValueError, match="out of offset order"):
        mark.open(5)
    with pytest.raises(ValueError):
        mark.open(10)


def test_watermarks_keep_partitions_apart() -> None:
    marks = Watermarks()
    marks[0].open(0)
    marks[0].consumed(4)
    marks[1].consumed(99)
    assert marks.committable() == {0: 0, 1: 100}
    assert marks.settle(0, 0) is True
    assert marks.committable() == {0: 5, 1: 100}
    assert sorted(marks.partitions()) == [0, 1]


def test_watermarks_settle_on_an_unknown_partition_returns_false() -> None:
    marks = Watermarks()
    assert marks.settle(3, 0) is False
    assert marks.partitions() == []  # settling does not create the partition


def test_watermarks_leave_out_partitions_with_nothing_consumed() -> None:
    marks = Watermarks()
    _ = marks[2]
    assert marks.partitions() == [2]
    assert marks.committable() == {}


def test_watermarks_forget_drops_a_partition() -> None:
    marks = Watermarks()
    marks[0].open(0)
    marks[0].consumed(0)
    marks[1].consumed(7)
    marks.forget(0)
    marks.forget(42)  # unknown: no error
    assert marks.partitions() == [1]
    assert marks.committable() == {1: 8}
    assert marks.settle(0, 0) is False
    assert marks[0].committable() is None  # a reassigned partition starts from scratch

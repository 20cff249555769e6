"""The commit watermark: per partition, the offset below which every message is settled.

A message is settled when its chunk is acknowledged by a worker (rows in ClickHouse) or its dead
letter is acknowledged by Kafka. Units (a chunk, or one dead letter) are opened in offset order and
may settle in any order; the committable offset is the first offset of the oldest unsettled unit,
or one past the last consumed offset when nothing is pending.
"""

from __future__ import annotations

from collections import OrderedDict


class PartitionWatermark:
    __slots__ = ("_next", "_units")

    def __init__(self) -> None:
        self._units: OrderedDict[int, bool] = OrderedDict()  # first offset -> settled
        self._next: int | None = None

    def consumed(self, offset: int) -> None:
        self._next = offset + 1

    def open(self, first_offset: int) -> None:
        if self._units and first_offset <= next(reversed(self._units)):
            raise ValueError(f"unit at {first_offset} opened out of offset order")
        self._units[first_offset] = False

    def settle(self, first_offset: int) -> bool:
        """Mark a unit settled; False if it is unknown (e.g. a duplicate or stale ack)."""
        if first_offset not in self._units:
            return False
        self._units[first_offset] = True
        return True

    def committable(self) -> int | None:
        """The next offset to commit, or None before anything was consumed."""
        while self._units:
            first, settled = next(iter(self._units.items()))
            if not settled:
                return first
            self._units.popitem(last=False)
        return self._next

    @property
    def pending(self) -> int:
        return sum(1 for settled in self._units.values() if not settled)


class Watermarks:
    """One PartitionWatermark per assigned partition."""

    def __init__(self) -> None:
        self._partitions: dict[int, PartitionWatermark] = {}

    def __getitem__(self, partition: int) -> PartitionWatermark:
        mark = self._partitions.get(partition)
        if mark is None:
            mark = self._partitions[partition] = PartitionWatermark()
        return mark

    def settle(self, partition: int, first_offset: int) -> bool:
        mark = self._partitions.get(partition)
        return mark.settle(first_offset) if mark is not None else False

    def committable(self) -> dict[int, int]:
        out = {}
        for partition, mark in self._partitions.items():
            offset = mark.committable()
            if offset is not None:
                out[partition] = offset
        return out

    def forget(self, partition: int) -> None:
        self._partitions.pop(partition, None)

    def partitions(self) -> list[int]:
        return list(self._partitions)

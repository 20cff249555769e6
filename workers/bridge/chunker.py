"""Group valid events of each partition into chunks, closed by count, by age, or when quiet.

Pure bookkeeping, no I/O: the consumer feeds events in offset order and sends what comes out.
"""

from __future__ import annotations

from collections.abc import Iterable

from workers.chunk import Chunk, ChunkEvent


class _Open:
    __slots__ = ("events", "last_at", "opened_at")

    def __init__(self, opened_at: float) -> None:
        self.opened_at = self.last_at = opened_at
        self.events: list[ChunkEvent] = []


class Chunker:
    """Chunks close when full (`max_events`), `max_wait_s` after their first event, or, when
    `max_idle_s` is set, once their partition has given them no event for that long: a burst's last
    chunk then goes when the burst ends rather than when its timer runs out, while a steady stream,
    which adds events at every poll, still fills its chunks up to the timer."""

    def __init__(
        self, topic: str, *, max_events: int, max_wait_s: float, ack_to: str, max_idle_s: float | None = None
    ) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.topic = topic
        self.max_events = max_events
        self.max_wait_s = max_wait_s
        self.max_idle_s = max_idle_s
        self.ack_to = ack_to
        self._open: dict[int, _Open] = {}

    def is_open(self, partition: int) -> bool:
        return partition in self._open

    def add(self, partition: int, event: ChunkEvent, now: float) -> Chunk | None:
        """Append an event; returns the chunk if this event filled it."""
        current = self._open.get(partition)
        if current is None:
            current = self._open[partition] = _Open(now)
        current.events.append(event)
        current.last_at = now
        if len(current.events) >= self.max_events:
            return self._close(partition)
        return None

    def due(self, now: float, *, reading: bool = True) -> list[Chunk]:
        """Close and return every chunk older than max_wait_s and, while the consumer is `reading`
        (a paused partition is quiet because nobody asks, not because nothing came), every chunk
        idle for max_idle_s."""
        idle = self.max_idle_s if reading else None
        expired = [
            p
            for p, c in self._open.items()
            if now - c.opened_at >= self.max_wait_s or (idle is not None and now - c.last_at >= idle)
        ]
        return [self._close(p) for p in expired]

    def restart_idle_clocks(self, now: float) -> None:
        """The consumer reads again (after a pause): quietness is measured from now."""
        for chunk in self._open.values():
            chunk.last_at = now

    def close_all(self) -> list[Chunk]:
        return [self._close(p) for p in list(self._open)]

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget open chunks of revoked partitions; their messages will be read again by the new owner."""
        for partition in partitions:
            self._open.pop(partition, None)

    def _close(self, partition: int) -> Chunk:
        events = tuple(self._open.pop(partition).events)
        return Chunk(
            topic=self.topic,
            partition=partition,
            first_offset=events[0].offset,
            last_offset=events[-1].offset,
            events=events,
            ack_to=self.ack_to,
        )

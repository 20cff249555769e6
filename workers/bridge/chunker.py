"""Group valid events of each partition into chunks, closed by count, by size, by age, or when quiet.

Pure bookkeeping, no I/O: the consumer feeds events in offset order and sends what comes out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from workers.chunk import Chunk, ChunkEvent


class _Open:
    __slots__ = ("events", "last_at", "opened_at", "size")

    def __init__(self, opened_at: float) -> None:
        self.opened_at = self.last_at = opened_at
        self.events: list[ChunkEvent] = []
        self.size = 0


class Chunker:
    """Chunks close when full (`max_events`), `max_wait_s` after their first event, or, when
    `max_idle_s` is set, once their partition has given them no event for that long: a burst's last
    chunk then goes when the burst ends rather than when its timer runs out, while a steady stream,
    which adds events at every poll, still fills its chunks up to the timer.

    A chunk also never holds more than `max_bytes` of event sizes (as the caller counts them): an
    event that would take it past closes it and opens the next. A chunk is one broker message, and
    the broker refuses messages over its limit (RabbitMQ: 128 MiB, 16 MiB from 4.0); without this
    bound, large events read quickly made a chunk the broker refused on every attempt, and the
    partition stopped. An event larger than `max_bytes` on its own gets a chunk of its own."""

    def __init__(
        self,
        topic: str,
        *,
        max_events: int,
        max_wait_s: float,
        ack_to: str,
        max_idle_s: float | None = None,
        max_bytes: int | None = None,
    ) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.topic = topic
        self.max_events = max_events
        self.max_wait_s = max_wait_s
        self.max_idle_s = max_idle_s
        # Unbounded as a number, so the hot path is one int comparison (no None check per event).
        self.max_bytes = max_bytes if max_bytes is not None else sys.maxsize
        self.ack_to = ack_to
        self._open: dict[int, _Open] = {}

    def is_open(self, partition: int) -> bool:
        return partition in self._open

    def add(self, partition: int, event: ChunkEvent, now: float, size: int = 0) -> Chunk | None:
        """Append an event of `size` bytes; returns a chunk this closed: the partition's open chunk if
        the event does not fit in it (the event then begins the next, so the returned chunk's
        last_offset is below event.offset), or the chunk this event filled to max_events. Never both:
        a chunk is open to close only if max_events >= 2, and the event then begins a chunk of one."""
        current = self._open.get(partition)
        closed = None
        if current is not None and current.size + size > self.max_bytes:
            closed = self._close(partition)
            current = None
        if current is None:
            current = self._open[partition] = _Open(now)
        current.events.append(event)
        current.size += size
        current.last_at = now
        if len(current.events) >= self.max_events:
            return self._close(partition)
        return closed

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

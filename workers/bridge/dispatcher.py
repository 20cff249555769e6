"""Hand chunks to Celery, keep at most `max_inflight` unacknowledged, and collect acks.

`submit` never blocks: a chunk waits in `pending` until there is room or the broker is reachable
again. The consumer checks `saturated` and pauses its partitions instead of reading more, so memory
stays bounded by `max_inflight` chunks plus what one poll returned.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from sentinel import metrics
from workers.chunk import Chunk

log = logging.getLogger(__name__)


@dataclass
class _InFlight:
    chunk: Chunk
    sent_at: float


class Dispatcher:
    def __init__(
        self,
        send: Callable[[Chunk], None],
        receive_acks: Callable[[], list[str]],
        *,
        max_inflight: int,
        ack_timeout_s: float,
        retry_after_s: float = 1.0,
        ack_poll_interval_s: float = 0.0,
    ) -> None:
        self._send = send
        self._receive_acks = receive_acks
        self.max_inflight = max_inflight
        self.ack_timeout_s = ack_timeout_s
        self.retry_after_s = retry_after_s
        self.pending: deque[Chunk] = deque()
        self.inflight: dict[str, _InFlight] = {}
        self._blocked_until = 0.0
        # Each look for acks is a Redis round trip; the loop turns far more often than acks arrive.
        self.ack_poll_interval_s = ack_poll_interval_s
        self._next_ack_poll = 0.0

    @property
    def saturated(self) -> bool:
        return bool(self.pending) or len(self.inflight) >= self.max_inflight

    def submit(self, chunk: Chunk) -> None:
        self.pending.append(chunk)

    def pump(self, now: float) -> None:
        """Send waiting chunks while there is room. A broker error keeps the chunk waiting."""
        while self.pending and len(self.inflight) < self.max_inflight and now >= self._blocked_until:
            chunk = self.pending[0]
            if not self._try_send(chunk, now):
                return
            self.pending.popleft()
            self.inflight[chunk.token] = _InFlight(chunk, now)
            metrics.BRIDGE_CHUNKS_DISPATCHED.inc()
        metrics.BRIDGE_INFLIGHT_CHUNKS.set(len(self.inflight))

    def collect(self, now: float) -> list[Chunk]:
        """Chunks acknowledged since the last call; also re-sends chunks whose ack is overdue."""
        tokens: list[str] = []
        if self.inflight and now >= self._next_ack_poll:
            self._next_ack_poll = now + self.ack_poll_interval_s
            try:
                tokens = self._receive_acks()
            except Exception as exc:  # noqa: BLE001 - Redis away: acks wait, chunks stay in flight
                log.warning("cannot read chunk acks: %s", exc)
        done = [entry.chunk for token in tokens if (entry := self.inflight.pop(token, None))]
        for token, entry in list(self.inflight.items()):
            if now - entry.sent_at >= self.ack_timeout_s and now >= self._blocked_until:
                resent = replace(entry.chunk, attempt=entry.chunk.attempt + 1)
                if self._try_send(resent, now):
                    log.warning("no ack for %s after %.0fs; sent again", token, now - entry.sent_at)
                    self.inflight[token] = _InFlight(resent, now)
                    metrics.BRIDGE_CHUNKS_RESENT.inc()
        metrics.BRIDGE_INFLIGHT_CHUNKS.set(len(self.inflight))
        return done

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop chunks of revoked partitions: their acks no longer move our commits."""
        gone = set(partitions)
        self.pending = deque(c for c in self.pending if c.partition not in gone)
        for token in [t for t, e in self.inflight.items() if e.chunk.partition in gone]:
            del self.inflight[token]

    def inflight_for(self, partitions: Iterable[int]) -> int:
        wanted = set(partitions)
        return sum(1 for e in self.inflight.values() if e.chunk.partition in wanted) + sum(
            1 for c in self.pending if c.partition in wanted
        )

    def _try_send(self, chunk: Chunk, now: float) -> bool:
        try:
            self._send(chunk)
        except Exception as exc:  # noqa: BLE001 - broker away: keep the chunk, try again shortly
            log.warning("cannot send chunk %s to the broker: %s", chunk.token, exc)
            self._blocked_until = now + self.retry_after_s
            return False
        return True

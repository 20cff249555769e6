"""The audit emitter: the proxy's events, posted to ingest in batches, spooled to disk while ingest
cannot take them. Emission never slows or fails an MCP call.

Two threads own the work after `submit` (a deque append, on the proxy's loop):

- the batcher cuts the queue into batches (by count, ingest's limits, and `batch_max_s` after a
  batch's first event), encodes them, and hands each to the poster, or, while the spool holds
  anything or the poster already has `pending_batches` waiting, appends it to the spool;
- the poster posts the batches handed to it, then the spool's oldest segments, then, with nothing
  of its own, the slot of a proxy that died and was not restarted. When a post must be retried,
  every batch it holds goes to the spool before it waits out the backoff, so during an outage
  events are on disk within about `batch_max_s` of their capture.

Order: a batch handed to the poster is older than anything spooled after it, and the spool
replays by sequence number, so events reach ingest in the order they were submitted (a batch
split for size keeps its halves in order). A new Emitter on the same folder replays the spool
before anything it is given.

What a SIGKILL can lose: events still in memory (the queue and the batches not yet answered,
normally less than `batch_max_s` of traffic), never a spooled one. A crash may post a spooled
segment twice; event ids fixed at capture make the copies one row downstream.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mcp_proxy.backoff import Backoff
from mcp_proxy.ingest_client import IngestClient, Verdict
from mcp_proxy.ratelimited_log import RateLimitedLog
from mcp_proxy.spool import DROP_NEWEST, Segment, Spool, SpoolError, read_segment
from sentinel import metrics, settings

log = logging.getLogger(__name__)

# How long an idle thread sleeps before looking again; submit and close wake them sooner.
_IDLE_WAIT_S = 1.0
# How often an idle poster looks for the spool slot of a proxy that died and was not restarted.
_ORPHAN_CHECK_S = 10.0


@dataclass(frozen=True)
class EmitterConfig:
    ingest_url: str
    token: str | None
    spool_dir: Path
    spool_max_bytes: int
    batch_max_events: int = 500
    batch_max_s: float = 0.1
    queue_max: int = 10_000  # events submitted and not yet cut into a batch
    spool_full: str = DROP_NEWEST  # or "drop-oldest" (mcp_proxy/spool.py)
    retry_min_s: float = 0.2
    retry_max_s: float = 5.0
    connect_timeout_s: float = 2.0
    post_timeout_s: float = 15.0
    # Batches in memory waiting for the poster; beyond them the batcher spools, so a slow ingest
    # fills the disk, not the memory.
    pending_batches: int = 4
    # Events per POST when more than a batch waits (batches in memory, or the spool): a backlog
    # goes in fewer, larger requests. Measured at saturation against the local ingest, 500-event
    # POSTs took ~16,000 events/s and 2,000-event POSTs ~25,000-32,000.
    post_max_events: int = 2000
    # Ingest's limits (ingest_app/accept.py): a batch never exceeds them.
    max_body_bytes: int = settings.INGEST_MAX_BODY_BYTES
    max_post_events: int = settings.INGEST_MAX_EVENTS
    max_event_bytes: int = settings.INGEST_MAX_EVENT_BYTES

    @classmethod
    def from_settings(cls, *, spool_dir: Path | None = None) -> EmitterConfig:
        """The SENTINEL_PROXY_* settings; the spool under SENTINEL_PROXY_DATA_DIR unless given."""
        return cls(
            ingest_url=settings.PROXY_INGEST_URL,
            token=settings.PROXY_INGEST_TOKEN or None,
            spool_dir=spool_dir if spool_dir is not None else settings.PROXY_DATA_DIR / "spool",
            spool_max_bytes=settings.PROXY_SPOOL_MAX_BYTES,
            batch_max_events=settings.PROXY_BATCH_MAX_EVENTS,
            batch_max_s=settings.PROXY_BATCH_MAX_S,
            queue_max=settings.PROXY_QUEUE_MAX,
            spool_full=settings.PROXY_SPOOL_FULL,
            retry_min_s=settings.PROXY_RETRY_MIN_S,
            retry_max_s=settings.PROXY_RETRY_MAX_S,
            post_timeout_s=settings.PROXY_POST_TIMEOUT_S,
        )

    @property
    def events_per_post(self) -> int:
        return max(1, min(self.batch_max_events, self.max_post_events))

    @property
    def body_limit(self) -> int:
        # Ingest and nginx refuse a body over max_body_bytes; stay strictly under it.
        return self.max_body_bytes - 1


@dataclass(frozen=True)
class Batch:
    seq: int  # its place in the spool's order
    lines: list[bytes]  # encoded events
    size: int  # bytes in a body: each line and its newline


def _drop(reason: str, count: int = 1) -> None:
    if count > 0:
        metrics.PROXY_EVENTS_DROPPED.labels(reason).inc(count)


class Emitter:
    """Owns each event from `submit` until ingest answered 202 for it, or the spool holds it."""

    def __init__(self, config: EmitterConfig) -> None:
        self.config = config
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()  # the batcher's: events arrived, or close
        self._cv = threading.Condition()  # guards what follows; the poster waits on it
        self._pending: deque[Batch] = deque()
        self._retry_at = 0.0
        self._closing = False
        self._closed = False
        self._batcher_done = False
        self._abandoned = False  # close gave up waiting for the poster and spooled its batches
        self._poster_done = False  # from then on, batches go to the spool
        self._deadline = float("inf")
        self._carry: bytes | None = None  # an encoded event that did not fit its batch
        self._backoff = Backoff(config.retry_min_s, config.retry_max_s)
        self._warn = RateLimitedLog(log)
        self._spool: Spool | None = None
        self._orphan: Spool | None = None  # a dead proxy's slot, being replayed by this one
        self._orphan_check_at = 0.0
        self._client: IngestClient | None = None
        self._threads: list[threading.Thread] = []

    # -- the proxy's side ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (replaying what an earlier process left there first) and start the
        batcher and poster threads. Raises SpoolError or OSError when the spool folder cannot be
        used: better a proxy that refuses to start than one that cannot keep its promise."""
        if self._threads:
            return
        config = self.config
        self._spool = Spool(config.spool_dir, config.spool_max_bytes, config.spool_full)
        if not self._spool.empty():
            log.info(
                "replaying %d spooled audit events (%d bytes) from %s",
                self._spool.events,
                self._spool.bytes,
                self._spool.folder,
            )
        metrics.PROXY_SPOOL_BYTES.set(self._spool.bytes)
        self._client = IngestClient(
            config.ingest_url, config.token, connect_timeout_s=config.connect_timeout_s, timeout_s=config.post_timeout_s
        )
        self._threads = [
            threading.Thread(target=self._batch_loop, name="sentinel-emitter-batcher", daemon=True),
            threading.Thread(target=self._post_loop, name="sentinel-emitter-poster", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, event: dict[str, Any]) -> None:
        """Queue one complete event. Never blocks, never raises; the emitter owns `event` from now
        on (do not change it). When the queue is full, which happens only if the disk cannot keep
        up (the batcher spools whatever the poster cannot take), the event is dropped and counted
        (`queue_full`); after close, `closed`."""
        try:
            queue = self._queue
            if self._closed or len(queue) >= self.config.queue_max:
                reason = "closed" if self._closed else "queue_full"
                _drop(reason)
                self._warn.warning(reason, "audit event dropped: %s", reason)
                return
            queue.append(event)
            depth = len(queue)
            # Only the first event of a batch and a full batch wake the batcher: an Event.set per
            # call would cost more than the append.
            if depth == 1 or depth == self.config.batch_max_events:
                self._wake.set()
        except Exception:  # noqa: BLE001 - auditing must never fail the MCP call
            self._warn.warning("submit", "audit event dropped: submit failed", exc_info=True)

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush: cut what is queued into batches and post them for up to `timeout_s`; what is not
        acknowledged by then goes to the spool, for the next process on this folder to replay."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            if self._closed:
                return
            self._closing = True
            self._closed = True
            self._deadline = deadline
            self._cv.notify_all()
        self._wake.set()
        batcher, poster = self._threads or (None, None)
        if batcher is not None:
            batcher.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            self._batcher_done = True
            self._cv.notify_all()
        if poster is not None:
            # The poster's requests time out at the deadline; a second more lets it spool.
            poster.join(max(0.0, deadline - time.monotonic()) + 1.0)
            if poster.is_alive():
                with self._cv:
                    self._abandoned = True
                    self._spill(list(self._pending))
                    self._pending.clear()
        if self._spool is not None and not (batcher is not None and batcher.is_alive()):
            self._spool.close()
        if self._orphan is not None and not (poster is not None and poster.is_alive()):
            self._orphan.close()
        if self._client is not None and not (poster is not None and poster.is_alive()):
            self._client.close()
        self._update_gauges()

    # -- the batcher -----------------------------------------------------------------------------

    def _batch_loop(self) -> None:
        config = self.config
        while True:
            self._wake.clear()
            if not self._queue and self._carry is None:
                if self._closing:
                    return
                self._wake.wait(_IDLE_WAIT_S)
                continue
            opened = time.monotonic()
            while len(self._queue) < config.batch_max_events and not self._closing:
                remaining = opened + config.batch_max_s - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.clear()
                if len(self._queue) >= config.batch_max_events:
                    break
                self._wake.wait(remaining)
            try:
                batch = self._cut()
                if batch is not None:
                    self._route(batch)
            except Exception:  # a bug here must not stop every later event
                log.exception("audit batcher failed on a batch; its events are lost")

    def _cut(self) -> Batch | None:
        """The next batch from the queue: at most `events_per_post` events within `body_limit`."""
        config = self.config
        lines: list[bytes] = []
        size = 0
        while len(lines) < config.events_per_post:
            if self._carry is not None:
                line, self._carry = self._carry, None
            else:
                try:
                    event = self._queue.popleft()
                except IndexError:
                    break
                line = self._encode(event)
                if line is None:
                    continue
            if size + len(line) + 1 > config.body_limit:
                if not lines:  # larger than any body ingest takes: it would never leave
                    _drop("event_too_large")
                    self._warn.warning("event_too_large", "audit event dropped: %d bytes, over any body", len(line))
                    continue
                self._carry = line
                break
            lines.append(line)
            size += len(line) + 1
        self._update_gauges()
        if not lines:
            return None
        assert self._spool is not None
        return Batch(self._spool.next_seq(), lines, size)

    def _encode(self, event: dict[str, Any]) -> bytes | None:
        if not event.get("event_id"):
            # The proxy fixes ids at capture; one that came without gets its id here, before any
            # retry or spool, so every copy ingest may see of it is the same row downstream.
            event["event_id"] = str(uuid.uuid4())
        try:
            # default=str: a value JSON cannot hold (a datetime, a UUID object) is kept as text
            # rather than costing the whole event.
            line = orjson.dumps(event, default=str)
        except (TypeError, orjson.JSONEncodeError):
            _drop("unserializable")
            self._warn.warning("unserializable", "audit event dropped: not JSON-serializable", exc_info=True)
            return None
        if len(line) > self.config.max_event_bytes:
            _drop("event_too_large")
            self._warn.warning(
                "event_too_large",
                "audit event dropped: %d bytes, ingest takes at most %d",
                len(line),
                self.config.max_event_bytes,
            )
            return None
        return line

    def _route(self, batch: Batch) -> None:
        assert self._spool is not None
        with self._cv:
            if (
                self._spool.empty()
                and len(self._pending) < self.config.pending_batches
                and not (self._abandoned or self._poster_done)
            ):
                self._pending.append(batch)
                self._cv.notify_all()
                return
        self._spill([batch])
        with self._cv:
            self._cv.notify_all()

    # -- the spool -------------------------------------------------------------------------------

    def _spill(self, batches: Sequence[Batch]) -> None:
        """Write `batches` to the spool, each as its own segment; counts what the spool refuses."""
        assert self._spool is not None
        for batch in batches:
            try:
                stored = self._spool.append(batch.seq, batch.lines)
            except OSError as exc:
                _drop("spool_error", len(batch.lines))
                self._warn.warning("spool_error", "audit events dropped: the spool cannot be written: %s", exc)
                continue
            metrics.PROXY_EVENTS_SPOOLED.inc(stored.written)
            if stored.refused:
                _drop("spool_full", stored.refused)
                self._warn.warning(
                    "spool_full",
                    "spool full (%d bytes), %s: %d audit events dropped",
                    self._spool.max_bytes,
                    self._spool.policy,
                    stored.refused,
                )
            if stored.evicted:
                _drop("spool_evicted", stored.evicted)
                self._warn.warning(
                    "spool_evicted",
                    "spool full (%d bytes), drop-oldest: %d spooled audit events deleted",
                    self._spool.max_bytes,
                    stored.evicted,
                )
        metrics.PROXY_SPOOL_BYTES.set(self._spool.bytes)

    # -- the poster ------------------------------------------------------------------------------

    def _post_loop(self) -> None:
        while True:
            try:
                if not self._post_next():
                    return
            except Exception:  # a bug here must not stop delivery for good
                log.exception("audit poster failed; retrying after a backoff")
                with self._cv:
                    self._retry_at = time.monotonic() + self._backoff.next_delay()

    def _post_next(self) -> bool:
        """Post the oldest batches in memory, or else a lease of the spool's oldest segments;
        False when closing and nothing is left."""
        assert self._spool is not None
        config = self.config
        taken: list[Batch] = []
        segments: list[Segment] = []
        source = self._spool
        with self._cv:
            while True:
                now = time.monotonic()
                if self._closing and now >= self._deadline:
                    self._spill_pending()
                    return self._poster_finished()
                # Closing tries once more at once: what fails goes to the spool either way.
                if self._pending and (now >= self._retry_at or self._closing):
                    taken = self._oldest_pending()
                    break
                if self._closing:
                    # The spool waits for the next process; close only flushes memory.
                    if self._batcher_done:
                        return self._poster_finished()
                    self._cv.wait(min(_IDLE_WAIT_S, self._deadline - now))
                    continue
                if not self._spool.empty() and now >= self._retry_at:
                    segments = self._spool.lease(config.post_max_events, config.body_limit)
                    if segments:
                        break
                orphan = self._orphan_spool(now) if now >= self._retry_at else None
                if orphan is not None:
                    segments = orphan.lease(config.post_max_events, config.body_limit)
                    if segments:
                        source = orphan
                        break
                    orphan.close()  # replayed: the slot is free again
                    self._orphan = None
                    continue
                backoff_left = self._retry_at - now
                self._cv.wait(min(backoff_left, _IDLE_WAIT_S) if backoff_left > 0 else _IDLE_WAIT_S)
        try:
            lines = [line for batch in taken for line in batch.lines] if taken else self._read(segments)
            timeout = self._deadline - time.monotonic() if self._closing else None
            outcome = self._deliver(lines, timeout)
        except BaseException:
            source.release(segments)  # posted again after the backoff
            raise
        with self._cv:
            if taken:
                if self._abandoned:
                    return self._poster_finished()  # close spooled these batches already
                for _ in taken:
                    self._pending.popleft()
                if outcome is not None:
                    # Everything in memory goes to disk in order before the wait, and the batcher
                    # spools behind it until the spool is drained. The lines not accepted come
                    # first, under the oldest batch's place in the order.
                    left = outcome[0]
                    self._pending.appendleft(Batch(taken[0].seq, left, sum(len(line) + 1 for line in left)))
                    self._spill_pending()
            elif outcome is None:
                source.remove(segments)
                metrics.PROXY_SPOOL_BYTES.set(self._spool.bytes)
            else:
                # The whole lease again later: events already accepted are posted twice, and
                # deduplicated downstream by their ids.
                source.release(segments)
            if outcome is None:
                self._backoff.reset()
            else:
                self._retry_at = time.monotonic() + outcome[1]
            self._cv.notify_all()
        self._update_gauges()
        return True

    def _orphan_spool(self, now: float) -> Spool | None:
        """With the lock held: the dead proxy's slot being replayed, or one found now (looked
        for every _ORPHAN_CHECK_S while this proxy has nothing of its own to post)."""
        assert self._spool is not None
        if self._orphan is None and now >= self._orphan_check_at:
            self._orphan_check_at = now + _ORPHAN_CHECK_S
            try:
                self._orphan = self._spool.adopt_orphan()
            except (OSError, SpoolError) as exc:
                self._warn.warning("orphan", "cannot replay another proxy's spool slot: %s", exc)
            if self._orphan is not None:
                orphan = self._orphan
                log.info("replaying %d audit events a stopped proxy left in %s", orphan.events, orphan.folder)
        return self._orphan

    def _poster_finished(self) -> bool:
        """With the lock held: the poster stops; a batch cut after this goes to the spool."""
        self._poster_done = True
        return False

    def _oldest_pending(self) -> list[Batch]:
        """With the lock held: the oldest batches in memory that one POST can carry (at least one)."""
        taken: list[Batch] = []
        events = size = 0
        for batch in self._pending:
            if taken and (
                events + len(batch.lines) > self.config.post_max_events or size + batch.size > self.config.body_limit
            ):
                break
            taken.append(batch)
            events += len(batch.lines)
            size += batch.size
        return taken

    def _spill_pending(self) -> None:
        """With the lock held: spool every batch in memory."""
        if not self._abandoned:
            self._spill(list(self._pending))
        self._pending.clear()

    def _read(self, segments: Sequence[Segment]) -> list[bytes]:
        lines: list[bytes] = []
        for segment in segments:
            try:
                read = read_segment(segment.path)
            except OSError as exc:
                _drop("spool_unreadable", segment.events)
                self._warn.warning("spool_unreadable", "spool segment %s unreadable: %s", segment.path, exc)
                continue
            if read.unreadable:
                _drop("spool_unreadable", read.unreadable)
                self._warn.warning(
                    "spool_unreadable", "spool segment %s: %d lines unreadable, skipped", segment.path, read.unreadable
                )
            lines.extend(read.lines)
        return lines

    def _deliver(self, lines: list[bytes], timeout_s: float | None) -> tuple[list[bytes], float] | None:
        """Post `lines` until each is accepted or dropped for good: None. When a post must be
        retried: the lines not yet accepted, and how long to wait."""
        assert self._client is not None
        work: deque[list[bytes]] = deque([lines] if lines else [])
        while work:
            chunk = work.popleft()
            answer = self._client.post(chunk, timeout_s=timeout_s)
            verdict = answer.verdict
            if verdict is Verdict.ACCEPTED:
                metrics.PROXY_EVENTS_POSTED.inc(len(chunk))
                metrics.PROXY_BATCHES_POSTED.inc()
            elif verdict is Verdict.SPLIT and len(chunk) > 1:
                half = len(chunk) // 2
                work.extendleft([chunk[half:], chunk[:half]])
            elif verdict is Verdict.DROP_ONE and answer.index is not None and 0 <= answer.index < len(chunk):
                self._dropped(answer.reason, 1, answer.status, answer.detail)
                rest = chunk[: answer.index] + chunk[answer.index + 1 :]
                if rest:
                    work.appendleft(rest)
            elif verdict is Verdict.RETRY:
                remaining = [line for part in (chunk, *work) for line in part]
                metrics.PROXY_EVENTS_RETRIED.inc(len(remaining))
                delay = self._backoff.next_delay(answer.retry_after_s)
                self._warn.warning(
                    "retry",
                    "ingest did not take %d audit events (%s); retrying in %.1fs, spooled meanwhile",
                    len(remaining),
                    answer.reason if answer.status is None else f"{answer.status} {answer.reason}",
                    delay,
                )
                return remaining, delay
            else:  # DROP, or a SPLIT/DROP_ONE that cannot apply: these events can never be accepted
                self._dropped(answer.reason, len(chunk), answer.status, answer.detail)
        return None

    def _dropped(self, reason: str, count: int, status: int | None, detail: str) -> None:
        _drop(reason, count)
        self._warn.warning(
            f"refused-{reason}", "ingest refused %d audit events for good: %s %s: %s", count, status, reason, detail
        )

    def _update_gauges(self) -> None:
        in_memory = len(self._queue) + sum(len(batch.lines) for batch in tuple(self._pending))
        metrics.PROXY_AUDIT_QUEUE_DEPTH.set(in_memory)

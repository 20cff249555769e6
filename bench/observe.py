"""When do events become rows? Probe polling, exact counts, and waiting for the pipeline to drain.

Latency: a thread takes probe registrations (event id, send time) from the load processes and every
~50 ms asks ClickHouse which pending probes are stored, with
`SELECT toString(event_id) FROM sentinel.mcp_events WHERE event_id IN (...)`. The table is ordered by
event_id, so each id costs one granule per part, not a scan. The row became visible after the last
query that missed it started (or after it was sent) and before the first query that found it
started; its latency is the middle of that window minus the send time, within half a poll interval
of the truth. (Polling every 20 ms instead cost ClickHouse ~0.3 of this machine's 2 cores at
500 events/s, measured, against ~0.1 at 50 ms: the harness would load what it measures.)

Throughput: after the load stops, wait until ClickHouse's own count of inserted rows
(`system.events`, a counter in memory: reading it scans nothing) has grown by the number of events
ingest accepted, then poll an exact count of the run's event type (`uniqExact(event_id)`,
restricted to parts written since the run started) every 50 ms until it reaches that number.
Counting from the start would load ClickHouse with the harness's own queries while it is the stage
being measured. The counter grows as each insert is written, so the exact count starts at most one
poll after the last rows could be visible; the bridge's committed offsets, the gate before, trail
the inserts by up to the 0.5 s commit interval, and that wait was counted as the pipeline's.

Drained: the bridge's committed offsets equal the log end on every partition of `mcp.events`, so
everything posted before is in ClickHouse and the next scenario starts on an idle pipeline.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_driver import Client
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bench.load import CANCEL, PROBE
from sentinel import settings
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

# Keeps each query well under ClickHouse's max_query_size (256 KiB): ~40 bytes per id.
MAX_IDS_PER_QUERY = 2000


@dataclass
class ProbeStats:
    registered: int = 0
    cancelled: int = 0
    seen: int = 0
    polls: int = 0
    poll_seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    @property
    def mean_poll_ms(self) -> float:
        return 1000.0 * self.poll_seconds / self.polls if self.polls else 0.0


class ProbeWatcher:
    """A thread that records when each probe event first becomes a visible row.

    Use as a context manager around the load; `wait_all_seen` then blocks until nothing is pending.
    `interval_s` may be changed while it runs (the next poll uses the new value).
    """

    def __init__(
        self,
        probes: Any,
        *,
        interval_s: float = 0.05,
        table: str = QUALIFIED_EVENTS_TABLE,
        client: Client | None = None,
    ) -> None:
        self._probes = probes
        self.interval_s = interval_s
        self._sql = f"SELECT toString(event_id) FROM {table} WHERE event_id IN %(ids)s"
        self._client = client or new_client()
        # event id -> [send time, start of the last query that did not find it] (monotonic)
        self._pending: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-watcher", daemon=True)
        self.stats = ProbeStats()
        self.error: BaseException | None = None

    def __enter__(self) -> ProbeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait_all_seen(self, timeout_s: float) -> bool:
        """Block until every registered probe is seen (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._take_registrations()
            if self.error is not None:
                raise RuntimeError(f"probe watcher failed: {self.error}") from self.error
            if not self.pending:
                return True
            time.sleep(self.interval_s)
        return False

    def unseen_send_times(self) -> list[float]:
        with self._lock:
            return [sent_at for sent_at, _ in self._pending.values()]

    def _take_registrations(self) -> None:
        while True:
            try:
                kind, items = self._probes.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                if kind == PROBE:
                    for sent_at, event_id in items:
                        self._pending[event_id] = [sent_at, sent_at]
                    self.stats.registered += len(items)
                elif kind == CANCEL:
                    for event_id in items:
                        if self._pending.pop(event_id, None) is not None:
                            self.stats.cancelled += 1

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                tick = time.monotonic()
                self._take_registrations()
                with self._lock:
                    ids = list(self._pending)
                for start in range(0, len(ids), MAX_IDS_PER_QUERY):
                    batch = ids[start : start + MAX_IDS_PER_QUERY]
                    asked_at = time.monotonic()
                    found = {event_id for (event_id,) in self._client.execute(self._sql, {"ids": tuple(batch)})}
                    with self._lock:
                        for event_id in batch:
                            entry = self._pending.get(event_id)
                            if entry is None:
                                continue  # cancelled meanwhile
                            if event_id in found:
                                del self._pending[event_id]
                                sent_at, last_miss = entry
                                self.stats.latencies_s.append((last_miss + asked_at) / 2 - sent_at)
                                self.stats.seen += 1
                            else:
                                entry[1] = asked_at
                if ids:
                    self.stats.polls += 1
                    self.stats.poll_seconds += time.monotonic() - tick
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - tick)))
        except BaseException as exc:  # noqa: BLE001 - surfaced by wait_all_seen in the main thread
            self.error = exc


def run_started_at() -> datetime:
    """A lower bound for `received_at` of rows written from now on (naive UTC, with slack for clocks)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(seconds=10)


def count_distinct(
    client: Client, event_type: str, since: datetime, table: str = QUALIFIED_EVENTS_TABLE
) -> tuple[int, int]:
    """(distinct event ids, rows) of `event_type` received since `since`, without FINAL.

    `received_at` is the partition key, so parts written before the run are skipped by their
    min/max index; rows counted twice (a redelivered chunk not yet merged) show as rows > distinct.
    """
    rows = client.execute(
        f"SELECT uniqExact(event_id), count() FROM {table} WHERE received_at >= %(since)s AND event_type = %(type)s",
        {"since": since, "type": event_type},
    )
    return int(rows[0][0]), int(rows[0][1])


def inserted_rows(client: Client) -> int:
    """ClickHouse's cumulative count of rows inserted into any table since it started."""
    rows = client.execute("SELECT value FROM system.events WHERE event = 'InsertedRows'")
    return int(rows[0][0]) if rows else 0


def wait_inserted(client: Client, before: int, expected: int, *, timeout_s: float, interval_s: float = 0.05) -> int:
    """Block until at least `expected` rows were inserted since `inserted_rows` read `before`, or
    the timeout passes; returns the rows inserted since. Rows of other tables (the canary, the
    server's own logs) count too: they can only start the exact count early, never late."""
    deadline = time.monotonic() + timeout_s
    while True:
        asked_at = time.monotonic()
        inserted = inserted_rows(client) - before
        if inserted >= expected or asked_at > deadline:
            return inserted
        time.sleep(max(0.0, interval_s - (time.monotonic() - asked_at)))


def wait_count(
    client: Client,
    event_type: str,
    expected: int,
    since: datetime,
    *,
    timeout_s: float,
    interval_s: float = 0.05,
    table: str = QUALIFIED_EVENTS_TABLE,
) -> tuple[float | None, int, int]:
    """Poll until `expected` distinct events of `event_type` are visible.

    Returns (monotonic time of the query that first saw them all, or None on timeout; distinct; rows).
    """
    deadline = time.monotonic() + timeout_s
    distinct = rows = 0
    while True:
        asked_at = time.monotonic()
        distinct, rows = count_distinct(client, event_type, since, table)
        if distinct >= expected:
            return asked_at, distinct, rows
        if asked_at > deadline:
            return None, distinct, rows
        time.sleep(max(0.0, interval_s - (time.monotonic() - asked_at)))


class Offsets:
    """Log-end and committed offsets of the events topic, through the Kafka admin API (read only)."""

    def __init__(self, topic: str = settings.EVENTS_TOPIC, bootstrap: str = settings.KAFKA_BOOTSTRAP) -> None:
        self.topic = topic
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def partitions(self) -> list[int]:
        meta = self.admin.list_topics(self.topic, timeout=10).topics[self.topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {self.topic}: {meta.error}")
        return sorted(meta.partitions)

    def log_end(self) -> dict[int, int]:
        request = {TopicPartition(self.topic, p): OffsetSpec.latest() for p in self.partitions()}
        futures = self.admin.list_offsets(request, request_timeout=10)
        return {tp.partition: future.result().offset for tp, future in futures.items()}

    def committed(self, group: str = settings.BRIDGE_GROUP) -> dict[int, int]:
        wanted = [TopicPartition(self.topic, p) for p in self.partitions()]
        futures = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, wanted)])
        result = futures[group].result()
        return {tp.partition: tp.offset for tp in result.topic_partitions}

    def lag(self, group: str = settings.BRIDGE_GROUP) -> int:
        """Messages not yet committed by `group` (a partition never committed counts from 0)."""
        end = self.log_end()
        committed = self.committed(group)
        return sum(max(0, high - max(committed.get(p, 0), 0)) for p, high in end.items())

    def wait_drained(self, timeout_s: float, group: str = settings.BRIDGE_GROUP) -> float:
        """Block until the group has committed up to the log end; returns seconds waited.

        Raises TimeoutError with the remaining lag.
        """
        started = time.monotonic()
        while True:
            lag = self.lag(group)
            if lag == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"pipeline not drained after {timeout_s:.0f}s: {lag} message(s) uncommitted")
            time.sleep(0.1)

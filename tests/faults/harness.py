"""Fault-injection harness: paced load through ingest, a committed-offset sampler, the drain, the figures.

A `FaultRun` marks its events with a type of its own (`fault.<slug>.<run id>`, stored in the
`event_type` column), so every read below selects exactly this run's events:

- `Load` posts the events in batches of 100 from a few threads, spread evenly over a duration so the
  fault lands in the middle of the traffic; it records every event_id answered 202 and every other
  answer (status, Retry-After, connection errors). It never retries: a 503'd batch is counted, not
  resent, so no event_id reaches Kafka twice through the harness.
- `OffsetSampler` snapshots the bridge group's committed offsets and, right after each snapshot,
  counts per partition the distinct offsets of this run's stored rows below the committed offset.
  Which offsets hold this run's messages is only known at the end (read back from Kafka), so the
  comparison is made then: a snapshot is a violation when fewer offsets were stored than this run
  had messages below the committed offset (less those dead-lettered). Rows only ever appear, so a
  count taken just after the snapshot can miss a violation that healed in between, never invent one.
- At the end: wait until the committed offsets reach the end of the topic and every accepted event
  is read back from ClickHouse (the drain), then count lost and duplicated events with FINAL.

docs/reliability.md describes the method for readers of the figures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import requests
from clickhouse_driver import Client
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from sentinel import semconv, settings
from sentinel_cli.emit import audit_event
from tests.e2e.helpers import committed_offsets, group_reader
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

# Events per fault. CI runs the default; `SENTINEL_FAULT_EVENTS=20000` is the published full scale.
SCALE = int(os.environ.get("SENTINEL_FAULT_EVENTS") or 3000)
BATCH_SIZE = 100
LOAD_THREADS = 4
REQUEST_TIMEOUT_S = 30.0  # ingest gives up on Kafka after SENTINEL_INGEST_PUBLISH_TIMEOUT_S (10 s)
LOAD_OVERRUN_S = 120.0  # a load that falls this far behind its schedule stops sending
SAMPLE_INTERVAL_S = 0.5
# Long enough for a lost ack to be re-sent (SENTINEL_CHUNK_ACK_TIMEOUT_S, 120 s) and inserted.
DRAIN_TIMEOUT_S = float(os.environ.get("SENTINEL_FAULT_DRAIN_TIMEOUT_S") or 300)
MIN_CHECKED_SAMPLES = 5

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# -- load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent and answered (seconds since the load started) and how."""

    started: float
    finished: float
    status: int | str  # HTTP status, or the exception's name when there was no answer
    events: int
    retry_after: str | None


class Load:
    """Posts `events` events in batches from a few threads, spread evenly over `duration_s`.

    Bounded in count (each batch is sent at most once) and in time (a batch more than
    LOAD_OVERRUN_S behind its schedule is not sent). Loopback only: this is a flood.
    """

    def __init__(self, marker: str, events: int, duration_s: float, *, threads: int = LOAD_THREADS) -> None:
        host = urlsplit(settings.INGEST_URL).hostname
        if host not in _LOOPBACK:
            raise RuntimeError(f"the fault load only targets a loopback ingest, not {settings.INGEST_URL}")
        self.marker = marker
        self.events = events
        self.batches = -(-events // BATCH_SIZE)
        self.interval_s = duration_s / self.batches
        self.threads = threads
        self.answers: list[Answer] = []
        self.accepted_ids: list[str] = []
        self.started_at = 0.0
        self.finished_at = 0.0
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._workers = [
            threading.Thread(target=self._post_batches, name=f"fault-load-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def join(self) -> None:
        limit = self.batches * self.interval_s + LOAD_OVERRUN_S + REQUEST_TIMEOUT_S + 10
        deadline = self.started_at + limit
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        for worker in self._workers:
            worker.join(REQUEST_TIMEOUT_S + 5)
        self.finished_at = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def sent(self) -> int:
        return sum(a.events for a in self.answers)

    @property
    def accepted(self) -> int:
        return len(self.accepted_ids)

    def answered(self, status: int | str, *, between: tuple[float, float] = (0.0, float("inf"))) -> list[Answer]:
        """Requests answered `status` that were sent within `between` (seconds since the start)."""
        low, high = between
        return [a for a in self.answers if a.status == status and low <= a.started <= high]

    def statuses(self) -> Counter[str]:
        """Events per answer (`202`, `503`, `ConnectionError`, ...)."""
        counts: Counter[str] = Counter()
        for answer in self.answers:
            counts[str(answer.status)] += answer.events
        return counts

    def _post_batches(self) -> None:
        session = requests.Session()
        url = f"{settings.INGEST_URL}/events"
        while not self._stop.is_set():
            with self._lock:
                index, self._next = self._next, self._next + 1
            if index >= self.batches:
                return
            due = self.started_at + index * self.interval_s
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            if time.monotonic() - due > LOAD_OVERRUN_S:
                return
            size = min(BATCH_SIZE, self.events - index * BATCH_SIZE)
            batch = [
                audit_event(event_type=self.marker, server="sentinel-faults", tool="fault", n=index * BATCH_SIZE + i)
                for i in range(size)
            ]
            started = self.elapsed()
            try:
                response = session.post(
                    url,
                    data=orjson.dumps(batch),
                    headers={"Content-Type": "application/json"},
                    timeout=REQUEST_TIMEOUT_S,
                )
                status: int | str = response.status_code
                retry_after = response.headers.get("Retry-After")
            except requests.RequestException as exc:
                status, retry_after = type(exc).__name__, None
            with self._lock:
                self.answers.append(Answer(started, self.elapsed(), status, size, retry_after))
                if status == 202:
                    self.accepted_ids.extend(str(event["event_id"]) for event in batch)


# -- committed offsets -----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float
    committed: dict[int, int]
    stored_below: dict[int, int]  # partition -> distinct stored offsets of this run below `committed`


class OffsetSampler(threading.Thread):
    """Snapshots the bridge group's committed offsets, each followed by one count query in ClickHouse."""

    def __init__(self, marker: str, start: dict[int, int], interval_s: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(name="fault-offset-sampler", daemon=True)
        self.marker = marker
        self.start_offsets = start
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self.unreadable = 0  # snapshots lost to the fault itself (Kafka or ClickHouse away)
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(30)

    def run(self) -> None:
        reader = group_reader()
        client = new_client()
        started = time.monotonic()
        try:
            while not self._halt.wait(self.interval_s):
                try:
                    committed = committed_offsets(reader)
                    stored = self._stored_below(client, committed)
                except Exception:  # noqa: BLE001 - the fault may take Kafka or ClickHouse away; try again
                    self.unreadable += 1
                    client.disconnect()
                    continue
                self.samples.append(Sample(time.monotonic() - started, committed, stored))
        finally:
            reader.close()
            client.disconnect()

    def _stored_below(self, client: Client, committed: dict[int, int]) -> dict[int, int]:
        start = self.start_offsets
        ranges = [
            f"(kafka_partition = {int(p)} AND kafka_offset >= {start.get(p, 0)} AND kafka_offset < {int(c)})"
            for p, c in committed.items()
            if c > start.get(p, 0)
        ]
        if not ranges:
            return {}
        rows = client.execute(
            f"SELECT kafka_partition, uniqExact(kafka_offset) FROM {QUALIFIED_EVENTS_TABLE}"
            f" WHERE event_type = %(marker)s AND ({' OR '.join(ranges)}) GROUP BY kafka_partition",
            {"marker": self.marker},
        )
        return {int(p): int(n) for p, n in rows}


@dataclass
class TopicReadback:
    """This run's messages in `mcp.events`, read back from Kafka after the drain."""

    offsets: dict[int, list[int]] = field(default_factory=dict)  # partition -> sorted offsets of this run
    dead_lettered: dict[int, list[int]] = field(default_factory=dict)  # of those, the ones in the DLQ
    aliased: dict[int, list[int]] = field(default_factory=dict)  # offsets of event_ids found at several offsets

    @property
    def messages(self) -> int:
        return sum(len(v) for v in self.offsets.values())


def commit_violations(samples: list[Sample], topic: TopicReadback) -> list[str]:
    """Snapshots whose committed offset had passed a message of this run that was neither stored nor
    dead-lettered. An event_id present at two offsets (a producer retry) is one row once merged, so
    each such offset below the commit is allowed to be missing; `aliased` is normally empty."""
    violations = []
    for sample in samples:
        for partition, offset in sample.committed.items():
            ours = topic.offsets.get(partition, [])
            needed = bisect_left(ours, offset) - bisect_left(topic.dead_lettered.get(partition, []), offset)
            allowed = bisect_left(topic.aliased.get(partition, []), offset)
            stored = sample.stored_below.get(partition, 0)
            if stored + allowed < needed:
                violations.append(
                    f"t={sample.at:.1f}s partition {partition}: committed {offset}, {needed} message(s) of this run"
                    f" below it, {stored} stored"
                )
    return violations


def checked_samples(samples: list[Sample], topic: TopicReadback) -> int:
    """Snapshots that had passed at least one message of this run (the others prove nothing)."""
    return sum(1 for s in samples if any(bisect_left(topic.offsets.get(p, []), c) > 0 for p, c in s.committed.items()))


# -- Kafka and ClickHouse reads ----------------------------------------------------------------


def _plain_consumer() -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": f"sentinel-faults-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )


def end_offsets(topic: str) -> dict[int, int]:
    """High watermark of every partition of `topic`."""
    consumer = _plain_consumer()
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in sorted(partitions)}
    finally:
        consumer.close()


def read_range(topic: str, start: dict[int, int], end: dict[int, int], timeout_s: float = 120.0) -> Iterator[Message]:
    """Every message of `topic` in [start, end) per partition."""
    wanted = {p: e for p, e in end.items() if e > start.get(p, 0)}
    if not wanted:
        return
    consumer = _plain_consumer()
    try:
        consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in wanted])
        deadline = time.monotonic() + timeout_s
        done: set[int] = set()
        while len(done) < len(wanted):
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topic} back took more than {timeout_s:.0f}s")
            for message in consumer.consume(1000, 1.0):
                partition = message.partition()
                if message.error() is not None:
                    continue
                if message.offset() >= wanted[partition]:
                    done.add(partition)
                    continue
                yield message
                # `end` is a high watermark: the message before it is the range's last.
                if message.offset() == wanted[partition] - 1:
                    done.add(partition)
    finally:
        consumer.close()


def read_back(marker: str, start: dict[int, int], end: dict[int, int], dlq_start: dict[int, int]) -> TopicReadback:
    """This run's messages in the events topic, and which of them went to the dead-letter topic."""
    readback = TopicReadback()
    offsets_of: dict[str, list[tuple[int, int]]] = {}
    for message in read_range(settings.EVENTS_TOPIC, start, end):
        event_id = _event_id_if_ours(message.value(), marker)
        if event_id is not None:
            readback.offsets.setdefault(message.partition(), []).append(message.offset())
            offsets_of.setdefault(event_id, []).append((message.partition(), message.offset()))
    for places in offsets_of.values():
        if len(places) > 1:
            for partition, offset in places:
                readback.aliased.setdefault(partition, []).append(offset)
    ours = {p: set(v) for p, v in readback.offsets.items()}
    for letter in read_range(settings.DLQ_TOPIC, dlq_start, end_offsets(settings.DLQ_TOPIC)):
        headers = {k: v for k, v in letter.headers() or () if v is not None}
        if headers.get(semconv.HEADER_DLQ_SOURCE_TOPIC) != settings.EVENTS_TOPIC.encode():
            continue
        partition = int(headers.get(semconv.HEADER_DLQ_SOURCE_PARTITION, b"-1"))
        offset = int(headers.get(semconv.HEADER_DLQ_SOURCE_OFFSET, b"-1"))
        if offset in ours.get(partition, ()):
            readback.dead_lettered.setdefault(partition, []).append(offset)
    for table in (readback.offsets, readback.dead_lettered, readback.aliased):
        for offsets in table.values():
            offsets.sort()
    return readback


def _event_id_if_ours(value: bytes | None, marker: str) -> str | None:
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if isinstance(event, dict) and event.get("type") == marker:
        return str(event.get("event_id"))
    return None


def stored_rows(client: Client, marker: str) -> tuple[list[str], int]:
    """This run's event ids as read with FINAL (one entry per row read), and the raw row count."""
    final = client.execute(
        f"SELECT toString(event_id) FROM {QUALIFIED_EVENTS_TABLE} FINAL WHERE event_type = %(m)s", {"m": marker}
    )
    raw = client.execute(f"SELECT count() FROM {QUALIFIED_EVENTS_TABLE} WHERE event_type = %(m)s", {"m": marker})
    return [row[0] for row in final], int(raw[0][0])


def _safe_committed(reader: Consumer) -> dict[int, int]:
    try:
        return committed_offsets(reader)
    except KafkaException:
        return {}


# -- processes --------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (the prefork pool of a Celery worker), from /proc."""
    children: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                children.extend(int(c) for c in (task / "children").read_text().split())
    return children


def _socket_inode(client_port: int, server_port: int) -> int | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == client_port and int(remote, 16) == server_port:
                    return int(fields[9])
    return None


def _owner_of_socket(inode: int, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def inserting_child(client: Client, worker_pid: int) -> int | None:
    """A worker child that has an INSERT into the events table in flight right now, or None.

    ClickHouse lists running queries with the client's port; /proc maps that port to the socket
    and the socket to the process holding it."""
    rows = client.execute(
        "SELECT port FROM system.processes WHERE query LIKE %(q)s AND written_rows = 0",
        {"q": f"INSERT INTO {QUALIFIED_EVENTS_TABLE}%"},
    )
    children = child_pids(worker_pid)
    for (port,) in rows:
        inode = _socket_inode(int(port), settings.CLICKHOUSE_PORT)
        owner = _owner_of_socket(inode, children) if inode is not None else None
        if owner is not None:
            return owner
    return None


def kill_mid_insert(worker_pid: int, *, whole_worker: bool = False, timeout_s: float = 30.0) -> int | None:
    """Wait for a worker child to be in the middle of an insert, then SIGKILL it (or, with
    `whole_worker`, the worker's whole process group). Returns the inserting child's pid, or None
    if no insert was caught within the timeout (nothing is killed then)."""
    if worker_pid <= 1:
        raise ValueError(f"not a worker pid: {worker_pid}")  # killpg(0) would hit our own group
    client = new_client()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            child = inserting_child(client, worker_pid)
            if child is not None:
                if whole_worker:
                    os.killpg(worker_pid, signal.SIGKILL)
                else:
                    os.kill(child, signal.SIGKILL)
                return child
            time.sleep(0.002)
    finally:
        client.disconnect()
    return None


# -- one run ----------------------------------------------------------------------------------


@dataclass
class Figures:
    fault: str
    scale: int
    sent: int = 0
    accepted: int = 0
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    raw_rows: int = 0
    drain_s: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    checked: int = 0
    unreadable: int = 0
    violations: list[str] = field(default_factory=list)
    dead_lettered: int = 0
    aliased: int = 0
    missing: list[str] = field(default_factory=list)  # a few lost event ids, for the failure message
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    # Figures of the fault's own, shown beside the result in the table ("1000 calls, 0 failed; ...").
    details: str = ""

    @property
    def result(self) -> str:
        if self.error:
            return f"error: {self.error}"
        return "pass" if not self.failures else "FAIL: " + "; ".join(self.failures)

    def line(self) -> str:
        drain = f"{self.drain_s:.1f}" if self.drain_s is not None else f">{DRAIN_TIMEOUT_S:.0f} (did not drain)"
        other = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()) if k != "202")
        return (
            f"fault={self.fault!r} sent={self.sent} accepted={self.accepted} stored={self.stored}"
            f" duplicates_read={self.duplicates} drain_s={drain}"
            f" | lost={self.lost} rows_before_final={self.raw_rows} dead_lettered={self.dead_lettered}"
            f" offsets_sharing_an_event_id={self.aliased}"
            f" commit_checks={self.checked} commit_violations={len(self.violations)}"
            f" unreadable_samples={self.unreadable}"
            + (f" other_answers=({other})" if other else "")
            + (f" | {self.details}" if self.details else "")
        )


class FaultRun:
    """One fault under load: `with run:` starts the load and the sampler; leaving the block waits for
    the load, drains and evaluates. `expect()` adds fault-specific checks; `verify()` records the figures
    and asserts everything."""

    def __init__(
        self,
        fault: str,
        *,
        duration_s: float,
        events: int = SCALE,
        ingest_affected: bool = False,
        record: Callable[[Figures], None],
    ) -> None:
        self.fault = fault
        self.ingest_affected = ingest_affected
        slug = "".join(c if c.isalnum() else "-" for c in fault.lower()).strip("-")[:40]
        self.marker = f"fault.{slug}.{uuid.uuid4().hex[:8]}"
        self.figures = Figures(fault, events)
        self.load = Load(self.marker, events, duration_s)
        self.marks: dict[str, float] = {}
        self._record = record
        self._recorded = False
        self._sampler: OffsetSampler | None = None
        self._start: dict[int, int] = {}
        self._dlq_start: dict[int, int] = {}

    def __enter__(self) -> FaultRun:
        self._start = end_offsets(settings.EVENTS_TOPIC)
        self._dlq_start = end_offsets(settings.DLQ_TOPIC)
        self._sampler = OffsetSampler(self.marker, self._start)
        self._sampler.start()
        self.load.start()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is not None:
            self.abort(f"{type(exc).__name__}: {exc}")
            return
        self._finish()

    # -- during the run --

    def at(self, seconds: float) -> None:
        """Sleep until `seconds` after the load started."""
        time.sleep(max(0.0, seconds - self.load.elapsed()))

    def mark(self, label: str) -> float:
        """Remember when something happened (seconds since the load started)."""
        self.marks[label] = self.load.elapsed()
        return self.marks[label]

    def expect(self, ok: bool, failure: str) -> None:
        if not ok:
            self.figures.failures.append(failure)

    # -- after the run --

    def abort(self, error: str) -> None:
        """Stop the load and the sampler; record the run as an error unless it was already recorded."""
        self.load.stop()
        if self._sampler is not None:
            self._sampler.stop()
        if self._recorded:
            return
        self.figures.sent, self.figures.accepted = self.load.sent, self.load.accepted
        self.figures.error = error
        self._recorded = True
        self._record(self.figures)

    def verify(self) -> None:
        figures = self.figures
        print(figures.line())
        if not self._recorded:
            self._recorded = True
            self._record(figures)
        assert figures.error is None, figures.error
        details = "\n".join([figures.line(), *figures.violations[:5]])
        if figures.missing:
            details += f"\nsome lost event ids: {figures.missing}"
        assert not figures.failures, f"{figures.result}\n{details}"

    def _finish(self) -> None:
        figures, load = self.figures, self.load
        load.join()
        figures.sent, figures.accepted = load.sent, load.accepted
        figures.statuses = dict(load.statuses())
        end = end_offsets(settings.EVENTS_TOPIC)
        client = new_client()
        reader = group_reader()
        accepted = set(load.accepted_ids)
        drained_at = None
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                committed = _safe_committed(reader)
                caught_up = all(committed.get(p, -1) >= e for p, e in end.items() if e > self._start.get(p, 0))
                if caught_up and accepted <= set(stored_rows(client, self.marker)[0]):
                    drained_at = time.monotonic()
                    break
                time.sleep(0.5)
        finally:
            reader.close()
        assert self._sampler is not None
        self._sampler.stop()
        figures.drain_s = drained_at - load.finished_at if drained_at is not None else None

        topic = read_back(self.marker, self._start, end, self._dlq_start)
        rows, figures.raw_rows = stored_rows(client, self.marker)
        client.disconnect()
        ids = set(rows)
        figures.stored = len(ids)
        figures.duplicates = len(rows) - len(ids)
        missing = accepted - ids
        figures.lost = len(missing)
        figures.missing = sorted(missing)[:5]
        figures.samples = len(self._sampler.samples)
        figures.unreadable = self._sampler.unreadable
        figures.checked = checked_samples(self._sampler.samples, topic)
        figures.violations = commit_violations(self._sampler.samples, topic)
        figures.dead_lettered = sum(len(v) for v in topic.dead_lettered.values())
        figures.aliased = sum(len(v) for v in topic.aliased.values())

        self.expect(figures.accepted > 0, "no event was accepted")
        self.expect(figures.lost == 0, f"{figures.lost} accepted event(s) not in ClickHouse")
        self.expect(figures.duplicates == 0, f"{figures.duplicates} event(s) read twice with FINAL")
        self.expect(
            not figures.violations,
            f"committed offsets passed unstored events ({len(figures.violations)} partition snapshot(s))",
        )
        self.expect(drained_at is not None, f"did not drain within {DRAIN_TIMEOUT_S:.0f}s")
        self.expect(
            figures.checked >= MIN_CHECKED_SAMPLES,
            f"only {figures.checked} committed-offset snapshot(s) could be checked",
        )
        self.expect(topic.messages >= figures.accepted, "fewer messages in Kafka than events accepted")
        if not self.ingest_affected:
            # Everything after Kafka may fail without the client noticing: Kafka holds the events.
            refused = {k: v for k, v in figures.statuses.items() if k != "202"}
            self.expect(not refused, f"ingest refused events although Kafka was up: {refused}")

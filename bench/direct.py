"""The cost of the Celery hop: the pipeline against a direct baseline on the same services.

With the pipeline drained, the bridge is stopped and N events are produced straight to `mcp.events`
with the headers ingest adds (`traceparent`, `event_id`), batched as ingest's producer batches. Then the same
N messages (the offsets recorded before and after producing) are consumed twice:

(a) direct: one plain confluent-kafka consumer (its own group, assigned at the start offsets, never
    committing) turns each message into the same row the worker writes and inserts with
    clickhouse-driver, CHUNK_MAX_EVENTS rows per INSERT, into `sentinel_bench.mcp_events_direct` (the
    events DDL under another name). No Celery, no tracing, one process, timed inside that process
    from just after `assign` to the end of the last INSERT.
(b) pipeline: the bridge is started again and resumes at its committed offsets, the same start
    offsets. Timed from the bridge's first "assigned partitions" log line (its own timestamp) to the
    first count that finds all N rows in `sentinel_bench.mcp_events`.

Both sides run `rounds` times, alternating (a), (b), (a), (b), ... on new events each round, and each
side starts on empty tables (bench/tables.py). ratio = median pipeline events/s / median direct
events/s.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from bench import tables
from bench.cpu import CpuMeter
from bench.observe import Offsets, inserted_rows, run_started_at, wait_count, wait_inserted
from sentinel import semconv, settings
from sentinel_local import processes
from workers.clickhouse.client import new_client, server_version, supports_dedup_token
from workers.clickhouse.schema import DATABASE, EVENT_COLUMNS, EVENTS_TABLE, QUALIFIED_EVENTS_TABLE, events_table_ddl

DIRECT_TABLE = f"{DATABASE}.mcp_events_direct"
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def direct_table_ddl(*, dedup_window: bool) -> str:
    """The events table DDL with the direct baseline's table name."""
    original = f"{DATABASE}.{EVENTS_TABLE}"
    ddl = events_table_ddl(dedup_window=dedup_window)
    if original not in ddl:
        raise RuntimeError(f"cannot derive the direct table: {original} not in the events DDL")
    return ddl.replace(original, DIRECT_TABLE, 1)


def event_value(event_type: str, seq: int, event_id: str) -> bytes:
    """An event as ingest would publish it (its dict re-serialised with orjson)."""
    return orjson.dumps(
        {
            "type": event_type,
            "server": "bench-mcp",
            "method": "tools/call",
            "tool": "search",
            "status": "ok",
            "duration_ms": 12.5,
            "attributes": {"client": "bench-direct", "seq": seq},
            "event_id": event_id,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "session_id": f"bench-direct-{seq % 64}",
        }
    )


def produce(n: int, event_type: str) -> None:
    """Produce `n` events to the events topic with the headers ingest adds; blocks."""
    # Linger and compression from ingest's settings, so the bridge reads record batches like those
    # ingest's producer writes.
    producer = Producer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": settings.INGEST_KAFKA_LINGER_MS,
            "compression.type": settings.KAFKA_COMPRESSION,
            "queue.buffering.max.messages": 500_000,
            "batch.num.messages": 10_000,
        }
    )
    failures: list[str] = []

    def on_delivery(err: Any, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for seq in range(n):
        event_id = str(uuid.uuid4())
        session = f"bench-direct-{seq % 64}".encode()
        headers = [
            (semconv.HEADER_TRACEPARENT, f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01".encode()),
            (semconv.HEADER_EVENT_ID, event_id.encode()),
        ]
        value = event_value(event_type, seq, event_id)
        while True:
            try:
                producer.produce(
                    settings.EVENTS_TOPIC, value=value, key=session, headers=headers, on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.05)
        if seq % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        raise RuntimeError(f"producing the baseline events failed: {remaining} unflushed, {failures[:3]}")


def run(
    offsets: Offsets,
    cpu: CpuMeter,
    n: int,
    event_type: str,
    *,
    rounds: int,
    drain_timeout_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    """Measure (a) then (b) on `n` new events, `rounds` times; leaves the bridge running.

    One round's direct side took 2.2-4.5 s, and ClickHouse's CPU for the same rows varied by a factor
    of 2-3 between rounds (with the same rows merged): a single round's ratio said more about the
    round than about the hop. The sides alternate, so a drift in the machine reaches both, and the
    figures are the medians of the rounds' events/s. Raises on failure.
    """
    results = [
        _round(offsets, cpu, n, f"{event_type}-{i}", drain_timeout_s=drain_timeout_s, timeout_s=timeout_s)
        for i in range(rounds)
    ]
    direct_eps = statistics.median(r["direct_eps"] for r in results)
    pipeline_eps = statistics.median(r["pipeline_eps"] for r in results)
    return {
        "events": n,
        "rounds": rounds,
        "direct_eps": round(direct_eps, 1),
        "pipeline_eps": round(pipeline_eps, 1),
        "ratio": round(pipeline_eps / direct_eps, 3),
        "round_ratios": [r["ratio"] for r in results],
        "each_round": results,
    }


def _round(
    offsets: Offsets, cpu: CpuMeter, n: int, event_type: str, *, drain_timeout_s: float, timeout_s: float
) -> dict[str, Any]:
    offsets.wait_drained(drain_timeout_s)
    client = new_client()
    # Each side starts on an idle ClickHouse: no earlier run's merges (bench/tables.py).
    tables.empty(client, QUALIFIED_EVENTS_TABLE)
    bridge = processes.get("bridge")
    bridge.down()
    start = offsets.log_end()
    committed = offsets.committed()
    if any(committed.get(p, -1) != high for p, high in start.items() if high > 0):
        raise RuntimeError(f"bridge stopped with uncommitted offsets: committed {committed}, log end {start}")
    since = run_started_at()
    produce(n, event_type)
    end = offsets.log_end()
    if sum(end[p] - start[p] for p in end) != n:
        raise RuntimeError(f"expected {n} new messages, log end moved {start} -> {end}: another producer?")

    counters = tables.merge_counters(client)
    cpu.start()
    direct = _run_direct(start, end, event_type, timeout_s)
    direct_services_cpu = cpu.since()
    direct_clickhouse = tables.counters_since(client, counters)
    tables.empty(client, DIRECT_TABLE)

    counters = tables.merge_counters(client)
    inserted_before = inserted_rows(client)
    cpu.start()
    bridge.up()
    up_returned = time.time()
    # Ask ClickHouse's insert counter (it scans nothing) until the end is near, then count every 50 ms.
    wait_inserted(client, inserted_before, n, timeout_s=timeout_s)
    done_at, distinct, rows = wait_count(client, event_type, n, since, timeout_s=timeout_s, interval_s=0.05)
    if done_at is None:
        raise RuntimeError(f"pipeline stored {distinct} of {n} baseline events within {timeout_s:.0f}s")
    done_wall = time.time() - (time.monotonic() - done_at)
    assigned = _assigned_at(bridge.log_path)
    pipeline_s = done_wall - (assigned if assigned is not None else up_returned)
    pipeline_eps = n / pipeline_s
    pipeline_cpu = cpu.since()
    pipeline_clickhouse = tables.counters_since(client, counters)
    return {
        "direct_eps": round(direct["eps"], 1),
        "pipeline_eps": round(pipeline_eps, 1),
        "ratio": round(pipeline_eps / direct["eps"], 3),
        "direct_s": round(direct["seconds"], 3),
        "pipeline_s": round(pipeline_s, 3),
        "direct_inserts": direct["inserts"],
        "direct_rows_per_insert": settings.CHUNK_MAX_EVENTS,
        "pipeline_rows": rows,
        "pipeline_distinct": distinct,
        "pipeline_timed_from": "bridge log: assigned partitions" if assigned is not None else "bridge up() returned",
        # CPU seconds: the direct consumer's own, and every role's while each side ran (the
        # pipeline's include the bridge's start-up).
        "direct_consumer_cpu_s": round(direct["cpu_s"], 2),
        "cpu_s_during_direct": direct_services_cpu,
        "cpu_s_during_pipeline": pipeline_cpu,
        # ClickHouse's own work while each side ran: the rows it merged say whether merges explain
        # a difference in its CPU.
        "clickhouse_during_direct": direct_clickhouse,
        "clickhouse_during_pipeline": pipeline_clickhouse,
    }


def _assigned_at(log_path: Any) -> float | None:
    """Wall time of the bridge's first 'assigned partitions' line in its log (fresh each start; the
    JSON lines carry `ts`): the first moment any of its consumers could read. With several
    consumers a later line follows a rebalance, and timing from it would leave out what was read
    before."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if "assigned partitions" in line:
            try:
                stamp = json.loads(line)["ts"]
                return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
            except (ValueError, KeyError):
                return None
    return None


def _run_direct(start: dict[int, int], end: dict[int, int], event_type: str, timeout_s: float) -> dict[str, Any]:
    client = new_client()
    ddl = direct_table_ddl(dedup_window=supports_dedup_token(server_version(client)))
    tables.ensure_like(client, DIRECT_TABLE, QUALIFIED_EVENTS_TABLE, ddl)
    tables.empty(client, DIRECT_TABLE)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(
        target=_direct_main, args=(start, end, f"bench-direct-{uuid.uuid4().hex[:8]}", timeout_s, results)
    )
    proc.start()
    try:
        kind, payload = results.get(timeout=timeout_s + 30)
    except queue.Empty:
        raise RuntimeError("direct baseline consumer did not finish") from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
    if kind != "done":
        raise RuntimeError(f"direct baseline consumer failed: {payload}")
    stored = client.execute(
        f"SELECT uniqExact(event_id) FROM {DIRECT_TABLE} WHERE event_type = %(t)s", {"t": event_type}
    )
    expected = sum(end[p] - start[p] for p in end)
    if stored[0][0] != expected:
        raise RuntimeError(f"direct baseline stored {stored[0][0]} of {expected} events")
    return payload


def _direct_main(start: dict[int, int], end: dict[int, int], group: str, timeout_s: float, results: Any) -> None:
    """In a process of its own: consume [start, end) of every partition and insert the rows."""
    try:
        results.put(("done", _consume_and_insert(start, end, group, timeout_s)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _consume_and_insert(start: dict[int, int], end: dict[int, int], group: str, timeout_s: float) -> dict[str, Any]:
    insert_sql = f"INSERT INTO {DIRECT_TABLE} ({', '.join(EVENT_COLUMNS)}) VALUES"
    client = new_client()
    client.execute("SELECT 1")  # connect before the clock starts, as the worker's client already is
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "queued.max.messages.kbytes": 64 * 1024,
            "fetch.wait.max.ms": 50,
        }
    )
    remaining = {p: end[p] for p in end if end[p] > start[p]}
    rows: list[tuple[Any, ...]] = []
    inserts = consumed = 0
    consumer.assign([TopicPartition(settings.EVENTS_TOPIC, p, start[p]) for p in remaining])
    started = time.monotonic()
    cpu_before = sum(os.times()[:2])
    deadline = started + timeout_s
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"direct consumer: {consumed} consumed, partitions left {remaining}")
        for message in consumer.consume(1000, 0.1):
            if message.error() is not None:
                continue
            partition, offset = message.partition(), message.offset()
            stop = remaining.get(partition)
            if stop is None or offset >= stop:
                continue
            rows.append(_row(message))
            consumed += 1
            if offset + 1 >= stop:
                del remaining[partition]
            if len(rows) >= settings.CHUNK_MAX_EVENTS:
                client.execute(insert_sql, rows)
                inserts += 1
                rows = []
    if rows:
        client.execute(insert_sql, rows)
        inserts += 1
    seconds = time.monotonic() - started
    cpu_s = sum(os.times()[:2]) - cpu_before
    consumer.close()
    return {"eps": consumed / seconds, "seconds": seconds, "events": consumed, "inserts": inserts, "cpu_s": cpu_s}


def _row(message: Any) -> tuple[Any, ...]:
    """The row the worker writes for this message (its consume span ids replaced by the header's)."""
    value = message.value()
    event = orjson.loads(value)
    headers = dict(message.headers() or ())
    traceparent = headers.get(semconv.HEADER_TRACEPARENT, b"").decode()
    if traceparent:
        _, trace_id, span_id, _ = traceparent.split("-", 3)
    else:
        trace_id, span_id = _ZERO_TRACE, _ZERO_SPAN
    _, timestamp_ms = message.timestamp()
    return (
        uuid.UUID(event["event_id"]),
        trace_id,
        span_id,
        event["type"],
        datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).replace(tzinfo=None),
        message.topic(),
        message.partition(),
        message.offset(),
        _ZERO_TRACE,
        _ZERO_SPAN,
        value.decode(),
    )

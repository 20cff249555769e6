"""What operators rely on, with the real processes: Flower, metrics that move, the canary, the
consumer-lag job, dead-letter replay, and JSON logs that carry trace ids."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
import requests
from confluent_kafka import Producer

from beat.schedule import CANARY_TASK, LAG_TASK
from sentinel import semconv, settings
from sentinel_local import processes
from sentinel_local.processes import process_env
from tests.e2e.helpers import wait_until
from workers.celery_app import app
from workers.clickhouse.client import new_client
from workers.clickhouse.queries import count_events, find_event
from workers.clickhouse.schema import QUALIFIED_CANARY_TABLE
from workers.redrive import read_dead_letters, replay

pytestmark = pytest.mark.usefixtures("pipeline")

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|[+-]Inf)$")


def scrape(url: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}."""
    samples = {}
    for line in requests.get(url, timeout=10).text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


INGEST_METRICS = f"{settings.INGEST_URL}/metrics"
BRIDGE_METRICS = f"http://{settings.HOST}:{settings.BRIDGE_METRICS_PORT}/metrics"
WORKER_METRICS = f"http://{settings.HOST}:{settings.WORKER_METRICS_PORT}/metrics"


def _sum(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items() if (k == name or k.startswith(name + "{")) and all(w in k for w in wanted))


def _post(body: object) -> requests.Response:
    return requests.post(
        f"{settings.INGEST_URL}/events",
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


class _BrokenIngest(processes.Ingest):
    """An ingest whose Kafka is unreachable, on its own port: every publish fails."""

    name = "ingest-broken-kafka"

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.INGEST_PORT + 11

    def env(self) -> dict[str, str]:
        return process_env(
            SENTINEL_INGEST_PORT=str(self.port),
            SENTINEL_KAFKA_BOOTSTRAP=f"{settings.HOST}:1",
            SENTINEL_INGEST_PUBLISH_TIMEOUT_S="1",
            PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"),
        )

    def ready(self) -> bool:
        try:
            return requests.get(f"http://{settings.HOST}:{self.port}/healthz", timeout=2).ok
        except requests.RequestException:
            return False


@pytest.fixture
def broken_ingest() -> Iterator[_BrokenIngest]:
    ingest = _BrokenIngest()
    ingest.up()
    yield ingest
    ingest.down()


@pytest.fixture(scope="module")
def flower() -> processes.Flower:
    process = processes.get("flower")
    process.up()
    return process  # type: ignore[return-value]


def test_every_pipeline_metric_moves_with_traffic(broken_ingest: _BrokenIngest) -> None:
    before = {url: scrape(url) for url in (INGEST_METRICS, BRIDGE_METRICS, WORKER_METRICS)}
    # The in-flight gauge rises and falls within a chunk's life: sample it while traffic flows.
    inflight_seen: list[float] = []
    stop_sampling = threading.Event()

    def sample_inflight() -> None:
        while not stop_sampling.is_set():
            inflight_seen.append(scrape(BRIDGE_METRICS).get("sentinel_bridge_inflight_chunks", 0.0))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample_inflight, daemon=True)
    sampler.start()
    try:
        for _ in range(5):
            assert _post([{"type": "tool_call", "tool": "metrics", "n": i} for i in range(1000)]).status_code == 202
        good = _post({"type": "tool_call", "tool": "metrics"})
        assert good.status_code == 202
        wait_until(lambda: find_event(new_client(), good.json()["event_ids"][0]), timeout_s=60, what="the rows")
    finally:
        stop_sampling.set()
        sampler.join(5)
    assert max(inflight_seen) > 0, "the in-flight gauge never rose while chunks were in flight"
    wait_until(
        lambda: scrape(BRIDGE_METRICS).get("sentinel_bridge_inflight_chunks") == 0,
        timeout_s=30,
        what="the in-flight gauge to fall back to 0",
    )
    assert _post({"tool": "no type"}).status_code == 400
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    producer.produce(settings.EVENTS_TOPIC, value=b"not json at all")
    assert producer.flush(30) == 0
    broken = requests.post(f"http://{settings.HOST}:{broken_ingest.port}/events", json={"type": "x"}, timeout=30)
    assert broken.status_code == 503 and broken.headers["Retry-After"]
    client = new_client()
    wait_until(lambda: find_event(client, good.json()["event_ids"][0]), timeout_s=60, what="the event's row")
    assert app.send_task(LAG_TASK).get(timeout=60)
    canary = app.send_task(CANARY_TASK).get(timeout=90)
    assert canary["success"], canary

    def moved() -> dict[str, float]:
        after = {url: scrape(url) for url in before}
        return (
            after
            if _sum(after[BRIDGE_METRICS], "sentinel_bridge_committed_offset")
            > _sum(before[BRIDGE_METRICS], "sentinel_bridge_committed_offset")
            else {}
        )

    after = wait_until(moved, timeout_s=30, what="the bridge to commit")
    ingest, bridge, worker = (after[u] for u in (INGEST_METRICS, BRIDGE_METRICS, WORKER_METRICS))
    b_ingest, b_bridge, b_worker = (before[u] for u in (INGEST_METRICS, BRIDGE_METRICS, WORKER_METRICS))
    assert _sum(ingest, "sentinel_ingest_requests_total", status="202") > _sum(
        b_ingest, "sentinel_ingest_requests_total", status="202"
    )
    assert _sum(ingest, "sentinel_ingest_requests_total", status="400") > _sum(
        b_ingest, "sentinel_ingest_requests_total", status="400"
    )
    assert _sum(ingest, "sentinel_ingest_events_accepted_total") > _sum(
        b_ingest, "sentinel_ingest_events_accepted_total"
    )
    assert _sum(ingest, "sentinel_ingest_events_rejected_total", reason="invalid_event") > _sum(
        b_ingest, "sentinel_ingest_events_rejected_total", reason="invalid_event"
    )
    broken_metrics = scrape(f"http://{settings.HOST}:{broken_ingest.port}/metrics")
    assert _sum(broken_metrics, "sentinel_ingest_produce_errors_total") >= 1
    assert _sum(broken_metrics, "sentinel_ingest_events_rejected_total", reason="kafka_unavailable") >= 1
    assert _sum(bridge, "sentinel_bridge_messages_consumed_total") > _sum(
        b_bridge, "sentinel_bridge_messages_consumed_total"
    )
    assert _sum(bridge, "sentinel_bridge_dead_letters_total") > _sum(b_bridge, "sentinel_bridge_dead_letters_total")
    assert _sum(bridge, "sentinel_bridge_chunks_dispatched_total") > _sum(
        b_bridge, "sentinel_bridge_chunks_dispatched_total"
    )
    assert "sentinel_bridge_inflight_chunks" in bridge
    assert _sum(worker, "sentinel_worker_rows_inserted_total") > _sum(b_worker, "sentinel_worker_rows_inserted_total")
    assert _sum(worker, "sentinel_worker_insert_seconds_count") > _sum(b_worker, "sentinel_worker_insert_seconds_count")
    assert any(k.startswith("sentinel_consumer_lag{") for k in worker)
    assert worker["sentinel_canary_success"] == 1.0
    assert 0 < worker["sentinel_canary_seconds"] == pytest.approx(canary["seconds"])


def test_canary_run_is_recorded_with_its_trace() -> None:
    result = app.send_task(CANARY_TASK).get(timeout=90)
    assert result["success"], result
    rows = new_client().execute(
        f"SELECT toString(event_id), trace_id, success FROM {QUALIFIED_CANARY_TABLE} WHERE event_id = toUUID(%(id)s)",
        {"id": result["event_id"]},
    )
    assert rows == [(result["event_id"], result["trace_id"], 1)]
    stored = find_event(new_client(), result["event_id"])
    assert stored is not None and stored.trace_id == result["trace_id"]  # the canary's trace reaches the row


def test_flower_shows_the_worker_and_a_completed_insert(flower: processes.Flower) -> None:
    user, password = flower.credentials().split(":", 1)
    base = f"http://{settings.HOST}:{settings.FLOWER_PORT}"
    assert requests.get(f"{base}/api/workers", timeout=30).status_code == 401
    response = _post({"type": "tool_call", "tool": "flower"})
    event_id = response.json()["event_ids"][0]
    wait_until(lambda: find_event(new_client(), event_id), timeout_s=60, what="the event's row")
    workers = requests.get(f"{base}/api/workers", params={"refresh": "1"}, auth=(user, password), timeout=30).json()
    assert any(name.startswith("sentinel-worker") for name in workers)

    def completed_insert() -> bool:
        tasks = requests.get(
            f"{base}/api/tasks",
            params={"taskname": "sentinel.insert_chunk", "state": "SUCCESS"},
            auth=(user, password),
            timeout=30,
        ).json()
        return bool(tasks)

    wait_until(completed_insert, timeout_s=60, what="Flower to list a succeeded insert task")


def test_dead_letters_replay_once_even_when_replayed_twice() -> None:
    marker = uuid.uuid4().hex
    with_id, without_id = str(uuid.uuid4()), f"no-id-{marker}"
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    dlq_headers = [
        (semconv.HEADER_DLQ_REASON, f"insert failed after retries ({marker})".encode()),
        (semconv.HEADER_DLQ_STAGE, b"worker"),
        (semconv.HEADER_DLQ_SOURCE_TOPIC, b"mcp.events"),
        (semconv.HEADER_DLQ_SOURCE_PARTITION, b"0"),
    ]
    producer.produce(
        settings.DLQ_TOPIC,
        value=orjson.dumps({"type": "tool_call", "event_id": with_id}),
        headers=[*dlq_headers, (semconv.HEADER_DLQ_SOURCE_OFFSET, b"1")],
    )
    producer.produce(
        settings.DLQ_TOPIC,
        value=orjson.dumps({"type": "tool_call", "marker": without_id}),
        headers=[*dlq_headers, (semconv.HEADER_DLQ_SOURCE_OFFSET, b"2")],
    )
    assert producer.flush(30) == 0

    records = list(read_dead_letters(reason=marker))
    assert len(records) == 2 and all(r.origin.startswith("mcp.events-0-") for r in records)
    assert replay(iter(records)) == 2
    assert replay(read_dead_letters(reason=marker)) == 2  # an operator runs it twice

    client = new_client()
    wait_until(lambda: count_events(client, [with_id])[0] == 1, timeout_s=60, what="the replayed event")
    query = f"SELECT count() FROM {settings.CLICKHOUSE_DATABASE}.mcp_events FINAL WHERE position(payload, %(m)s) > 0"
    wait_until(
        lambda: client.execute(query, {"m": without_id})[0][0] >= 1,
        timeout_s=60,
        what="the replayed event without an id",
    )
    time.sleep(3)  # both replays have long been consumed; duplicates would show now
    assert count_events(client, [with_id]) == (1, 1)
    assert client.execute(query, {"m": without_id})[0][0] == 1


def test_logs_are_json_lines_with_trace_ids() -> None:
    response = _post({"type": "tool_call", "tool": "logs"})
    event_id = response.json()["event_ids"][0]
    row = wait_until(lambda: find_event(new_client(), event_id), timeout_s=60, what="the event's row")
    log_path = processes.get("worker").log_path

    def insert_line() -> dict | None:
        for line in log_path.read_text().splitlines():
            if line.startswith("{") and row.insert_trace_id in line:
                return json.loads(line)
        return None

    entry = wait_until(insert_line, timeout_s=30, what="a worker log line in the insert's trace")
    assert entry["trace_id"] == row.insert_trace_id and len(entry["span_id"]) == 16
    assert entry["service"] == semconv.SERVICE_WORKER
    bridge_lines = [
        json.loads(line) for line in processes.get("bridge").log_path.read_text().splitlines() if line.startswith("{")
    ]
    assert bridge_lines and all({"ts", "level", "service", "msg"} <= set(e) for e in bridge_lines)

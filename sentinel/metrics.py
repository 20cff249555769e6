"""Every Prometheus metric Sentinel exports, in one place, and the `/metrics` payload.

Under ingest's server workers and Celery prefork each process counts for itself; with `PROMETHEUS_MULTIPROC_DIR`
set, prometheus_client writes the values to files there and `render()` merges them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess

# -- ingest --------------------------------------------------------------------------------------
INGEST_REQUESTS = Counter("sentinel_ingest_requests", "POST /events requests by HTTP status", ["status"])
INGEST_EVENTS_ACCEPTED = Counter("sentinel_ingest_events_accepted", "Events acknowledged by Kafka")
INGEST_EVENTS_REJECTED = Counter("sentinel_ingest_events_rejected", "Events refused, by reason", ["reason"])
INGEST_PRODUCE_ERRORS = Counter("sentinel_ingest_produce_errors", "Kafka produce failures at ingest")
INGEST_MALFORMED_EVENT_TRACE_CONTEXT = Counter(
    "sentinel_ingest_malformed_event_trace_context",
    "Accepted events whose own traceparent or tracestate field could not be read (traced under the request)",
)

# -- bridge --------------------------------------------------------------------------------------
BRIDGE_CONSUMED = Counter("sentinel_bridge_messages_consumed", "Messages read from Kafka", ["partition"])
BRIDGE_DEAD_LETTERS = Counter("sentinel_bridge_dead_letters", "Messages sent to the DLQ", ["reason"])
BRIDGE_MALFORMED_TRACE_HEADERS = Counter(
    "sentinel_bridge_malformed_trace_headers", "Messages whose traceparent could not be parsed"
)
BRIDGE_CHUNKS_DISPATCHED = Counter("sentinel_bridge_chunks_dispatched", "Chunks sent to Celery")
BRIDGE_CHUNKS_RESENT = Counter("sentinel_bridge_chunks_resent", "Chunks sent again after no ack")
BRIDGE_INFLIGHT_CHUNKS = Gauge(
    "sentinel_bridge_inflight_chunks", "Chunks sent and not yet acked", multiprocess_mode="livesum"
)
BRIDGE_COMMITTED_OFFSET = Gauge(
    "sentinel_bridge_committed_offset", "Last committed offset", ["partition"], multiprocess_mode="max"
)
BRIDGE_PAUSED = Gauge(
    "sentinel_bridge_paused", "1 while partitions are paused for backpressure", multiprocess_mode="livemax"
)
CONSUMER_LAG = Gauge(
    "sentinel_consumer_lag", "Messages behind the log end, per partition", ["partition"], multiprocess_mode="max"
)

# -- worker --------------------------------------------------------------------------------------
WORKER_ROWS_INSERTED = Counter("sentinel_worker_rows_inserted", "Rows written to ClickHouse")
WORKER_INSERT_SECONDS = Histogram(
    "sentinel_worker_insert_seconds",
    "ClickHouse insert duration",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WORKER_INSERT_RETRIES = Counter("sentinel_worker_insert_retries", "Insert attempts retried")
WORKER_CHUNKS_DEAD_LETTERED = Counter(
    "sentinel_worker_chunks_dead_lettered", "Chunks that failed for good and went to the DLQ"
)

# -- proxy ---------------------------------------------------------------------------------------
PROXY_CALLS = Counter(
    "sentinel_proxy_calls", "MCP requests relayed, by server, method and status", ["server", "method", "status"]
)
PROXY_CALL_DURATION = Histogram("sentinel_proxy_call_duration_seconds", "MCP request duration", ["server", "method"])

# -- canary (beat) -------------------------------------------------------------------------------
CANARY_SECONDS = Gauge(
    "sentinel_canary_seconds", "End-to-end seconds of the last canary", multiprocess_mode="mostrecent"
)
CANARY_SUCCESS = Gauge("sentinel_canary_success", "1 if the last canary arrived", multiprocess_mode="mostrecent")
CANARY_RUNS = Counter("sentinel_canary_runs", "Canary runs by outcome", ["outcome"])

# -- proxy emitter -------------------------------------------------------------------------------
PROXY_AUDIT_QUEUE_DEPTH = Gauge(
    "sentinel_proxy_audit_queue_depth", "Audit events in memory, not yet posted", multiprocess_mode="livesum"
)
PROXY_SPOOL_BYTES = Gauge(
    "sentinel_proxy_spool_bytes", "Bytes of audit events in the spool", multiprocess_mode="livesum"
)
PROXY_EVENTS_POSTED = Counter("sentinel_proxy_events_posted", "Audit events ingest answered 202 for")
PROXY_EVENTS_RETRIED = Counter("sentinel_proxy_events_retried", "Audit events in POSTs that will be retried")
PROXY_EVENTS_SPOOLED = Counter("sentinel_proxy_events_spooled", "Audit events written to the spool")
PROXY_EVENTS_DROPPED = Counter("sentinel_proxy_events_dropped", "Audit events given up, by reason", ["reason"])
PROXY_BATCHES_POSTED = Counter("sentinel_proxy_batches_posted", "POST /events answered 202")


def registry() -> CollectorRegistry:
    """The registry to expose: merged across processes when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        _multiprocess.MultiProcessCollector(merged)
        return merged
    return REGISTRY


def serve(port: int, host: str | None = None) -> None:
    """Expose /metrics on `port` from a background thread (bridge, Celery worker, beat)."""
    from sentinel import settings

    start_http_server(port, addr=host or settings.HOST, registry=registry())


def mark_process_dead(pid: int) -> None:
    """Forget a dead child's live gauges (Celery prefork children)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _multiprocess.mark_process_dead(pid)


def render() -> tuple[bytes, str]:
    """The exposition payload and its content type, merged across processes when needed."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST

"""Process configuration, read once from the environment.

Every knob is a module constant with a default and an explicit type (snuba's habit), so a reader
sees the whole configuration surface in one file and `k8s/` can be checked against it. The OTel
SDK's own `OTEL_*` variables are deliberately not read here: the SDK reads them itself.
"""

from __future__ import annotations

import os
from pathlib import Path


def _str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


HOST = _str("SENTINEL_HOST", "127.0.0.1")

# Shifts every default port, so a second stack (a fault suite, a benchmark) can run beside the first.
PORT_OFFSET = _int("SENTINEL_PORT_OFFSET", 0)


def _port(name: str, default: int) -> int:
    return _int(name, default + PORT_OFFSET)


# Where the local stack keeps binaries, data and logs (git-ignored).
REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = Path(_str("SENTINEL_STACK_DIR", str(REPO_ROOT / ".stack")))

# Ports: each component's usual one by default, each overridable.
INGEST_PORT = _port("SENTINEL_INGEST_PORT", 8080)
# ingest's WSGI server (granian) listens here on loopback, behind nginx on INGEST_PORT (a buffering
# proxy: the app's threads never wait on a slow client's body).
INGEST_UPSTREAM_PORT = _int("SENTINEL_INGEST_UPSTREAM_PORT", INGEST_PORT + 1)
# The local Kafka: one KRaft node, or three (each broker and controller, `make test`'s topology, as in
# k8s). Node n listens on KAFKA_PORT + 2(n-1) and its controller on KAFKA_CONTROLLER_PORT + 2(n-1).
KAFKA_BROKERS = _int("SENTINEL_KAFKA_BROKERS", 1)
KAFKA_PORT = _port("SENTINEL_KAFKA_PORT", 9092)
KAFKA_CONTROLLER_PORT = _port("SENTINEL_KAFKA_CONTROLLER_PORT", 9093)
CLICKHOUSE_PORT = _port("SENTINEL_CLICKHOUSE_PORT", 9000)
CLICKHOUSE_HTTP_PORT = _port("SENTINEL_CLICKHOUSE_HTTP_PORT", 8123)
RABBITMQ_PORT = _port("SENTINEL_RABBITMQ_PORT", 5672)
RABBITMQ_DIST_PORT = _port("SENTINEL_RABBITMQ_DIST_PORT", 25672)
REDIS_PORT = _port("SENTINEL_REDIS_PORT", 6379)
# The OpenTelemetry Collector, where every process sends its spans (OTLP on its usual ports); it
# tail-samples whole traces and passes what it keeps to Jaeger's own OTLP ports (Tempo in k8s).
OTELCOL_OTLP_GRPC_PORT = _port("SENTINEL_OTELCOL_OTLP_GRPC_PORT", 4317)
OTELCOL_OTLP_HTTP_PORT = _port("SENTINEL_OTELCOL_OTLP_HTTP_PORT", 4318)
OTELCOL_HEALTH_PORT = _port("SENTINEL_OTELCOL_HEALTH_PORT", 13134)
OTELCOL_METRICS_PORT = _port("SENTINEL_OTELCOL_METRICS_PORT", 8888)
JAEGER_OTLP_GRPC_PORT = _port("SENTINEL_JAEGER_OTLP_GRPC_PORT", 14317)
JAEGER_OTLP_HTTP_PORT = _port("SENTINEL_JAEGER_OTLP_HTTP_PORT", 14318)
JAEGER_QUERY_PORT = _port("SENTINEL_JAEGER_QUERY_PORT", 16686)
FLOWER_PORT = _port("SENTINEL_FLOWER_PORT", 5555)
# Prometheus /metrics of the processes without an HTTP server of their own.
WORKER_METRICS_PORT = _port("SENTINEL_WORKER_METRICS_PORT", 9101)
BRIDGE_METRICS_PORT = _port("SENTINEL_BRIDGE_METRICS_PORT", 9102)
BEAT_METRICS_PORT = _port("SENTINEL_BEAT_METRICS_PORT", 9103)
JAEGER_GRPC_QUERY_PORT = _port("SENTINEL_JAEGER_GRPC_QUERY_PORT", 16685)
JAEGER_HEALTH_PORT = _port("SENTINEL_JAEGER_HEALTH_PORT", 13133)

# Client addresses, derived from the ports unless set outright (as k8s does).
KAFKA_BOOTSTRAP = _str(
    "SENTINEL_KAFKA_BOOTSTRAP", ",".join(f"{HOST}:{KAFKA_PORT + 2 * n}" for n in range(KAFKA_BROKERS))
)
CLICKHOUSE_HOST = _str("SENTINEL_CLICKHOUSE_HOST", HOST)
CLICKHOUSE_DATABASE = _str("SENTINEL_CLICKHOUSE_DATABASE", "sentinel")
CLICKHOUSE_USER = _str("SENTINEL_CLICKHOUSE_USER", "default")
CLICKHOUSE_PASSWORD = _str("SENTINEL_CLICKHOUSE_PASSWORD", "")
CELERY_BROKER_URL = _str("SENTINEL_CELERY_BROKER_URL", f"amqp://guest:guest@{HOST}:{RABBITMQ_PORT}//")
REDIS_URL = _str("SENTINEL_REDIS_URL", f"redis://{HOST}:{REDIS_PORT}/0")
JAEGER_QUERY_URL = _str("SENTINEL_JAEGER_QUERY_URL", f"http://{HOST}:{JAEGER_QUERY_PORT}")
INGEST_URL = _str("SENTINEL_INGEST_URL", f"http://{HOST}:{INGEST_PORT}")

# The local Collector's tail-sampling knobs, the environment variables k8s/base/config/otel-collector.yaml
# reads (k8s/base/otel-collector.yaml sets 1000 and 5; the laptop overlay keeps every trace). Locally
# every ordinary trace is kept too, so the demo, `sentinel trace` and the tests find any event's trace.
OTELCOL_SLOW_TRACE_THRESHOLD_MS = _int("SENTINEL_OTELCOL_SLOW_TRACE_THRESHOLD_MS", 1000)
OTELCOL_BASELINE_SAMPLING_PERCENT = _float("SENTINEL_OTELCOL_BASELINE_SAMPLING_PERCENT", 100.0)

# Topics: one place for their names (operators and tests rely on them).
EVENTS_TOPIC = _str("SENTINEL_EVENTS_TOPIC", "mcp.events")
DLQ_TOPIC = _str("SENTINEL_DLQ_TOPIC", "mcp.events.dlq")
# One partition per bridge consumer (BRIDGE_CONSUMERS) on the local stack. Each partition is a
# producer batch per linger.ms and a chunk per CHUNK_MAX_WAIT_S, so partitions beyond the consumers'
# number cost Kafka, ClickHouse and the worker CPU per event for no parallelism. k8s sets 4
# (k8s/base/config/sentinel.env), room for 4 bridge replicas.
EVENTS_TOPIC_PARTITIONS = _int("SENTINEL_EVENTS_TOPIC_PARTITIONS", 2)
BRIDGE_GROUP = _str("SENTINEL_BRIDGE_GROUP", "sentinel-bridge")
# Replicas of each partition of both topics, and how many must have a write before it is acknowledged
# (acks=all): with three brokers, one may be lost without refusing or losing an event.
EVENTS_TOPIC_REPLICATION_FACTOR = _int("SENTINEL_EVENTS_TOPIC_REPLICATION_FACTOR", min(KAFKA_BROKERS, 3))
KAFKA_MIN_INSYNC_REPLICAS = _int("SENTINEL_KAFKA_MIN_INSYNC_REPLICAS", 2 if KAFKA_BROKERS >= 3 else 1)
# Each partition of the events and dead-letter topics keeps at most this many bytes, oldest
# segments deleted first, consumed or not (locally the broker's default; in k8s the topics' own
# config, sized per overlay to the broker's volume). Retention by time alone (Kafka's 7 days) lets
# benchmark runs fill the disk, and RabbitMQ's disk alarm then blocks the bridge's publishes.
# 4 GiB per partition is minutes of batched load, hours of single events: a bridge stopped longer
# than that under load loses the oldest events, so raise it (with the disk) for such outages.
KAFKA_RETENTION_BYTES = _int("SENTINEL_KAFKA_RETENTION_BYTES", 4 * 1024**3)
# Retention deletes whole segments, so a partition holds up to one segment more than the cap.
KAFKA_SEGMENT_BYTES = _int("SENTINEL_KAFKA_SEGMENT_BYTES", 128 * 1024**2)
# Producer compression. On loopback it only costs CPU (ingest compresses, the broker and the bridge
# decompress); across a network, lz4 (the k8s ConfigMap's choice) saves more than it costs.
KAFKA_COMPRESSION = _str("SENTINEL_KAFKA_COMPRESSION", "none")
# How long ingest's producer holds a batch open for more requests' events (librdkafka's linger.ms).
# Each request waits for its batch's acknowledgement, so with one event per POST a shorter linger
# means more requests per second from the same clients, and a longer one fewer, larger batches
# (less CPU for Kafka per event).
INGEST_KAFKA_LINGER_MS = _int("SENTINEL_INGEST_KAFKA_LINGER_MS", 5)

# Ingest's app server processes, and the Python threads in each that run requests (mostly waiting
# for Kafka's acknowledgement). Concurrent requests share one producer whose batches (linger.ms) then
# carry several requests' events. Locally each process is an app server of its own behind nginx
# (ingest_app/server.py, upstreams); in k8s one server runs them all.
INGEST_WORKERS = _int("SENTINEL_INGEST_WORKERS", 2)
INGEST_THREADS = _int("SENTINEL_INGEST_THREADS", 16)

# Ingest limits.
INGEST_MAX_BODY_BYTES = _int("SENTINEL_INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024)
INGEST_MAX_EVENTS = _int("SENTINEL_INGEST_MAX_EVENTS", 10_000)
INGEST_MAX_EVENT_BYTES = _int("SENTINEL_INGEST_MAX_EVENT_BYTES", 512 * 1024)
# Comma-separated bearer tokens; empty means ingest is open (loopback development).
INGEST_TOKENS = _str("SENTINEL_INGEST_TOKENS", "")


def parse_tokens(raw: str) -> tuple[bytes, ...]:
    """The tokens of a comma-separated list such as INGEST_TOKENS: ingest accepts any of them, and
    beat's canary, a client of ingest, sends the first."""
    return tuple(t.strip().encode() for t in raw.split(",") if t.strip())


INGEST_PUBLISH_TIMEOUT_S = _float("SENTINEL_INGEST_PUBLISH_TIMEOUT_S", 10.0)

# Bridge consumers per `python -m workers.bridge`: processes in one consumer group, each owning some
# of the topic's partitions. The bridge's loop is one Python thread, so one consumer can hold up
# the whole pipeline while the workers and ClickHouse wait for chunks. In k8s each pod runs one and
# replicas scale it (k8s/base/bridge.yaml).
BRIDGE_CONSUMERS = _int("SENTINEL_BRIDGE_CONSUMERS", 2)

# Bridge chunking and backpressure.
# Each chunk is one Celery task and one INSERT, i.e. one ClickHouse part that merges rewrite:
# ClickHouse advises 10,000-100,000 rows per insert: fewer, larger parts are merged less often, and
# RabbitMQ carries fewer messages. Below full, chunks close by age (CHUNK_MAX_WAIT_S), so at steady
# rates this bound changes neither their size nor the latency.
CHUNK_MAX_EVENTS = _int("SENTINEL_CHUNK_MAX_EVENTS", 10_000)
# ... and at most this many bytes (workers/bridge/chunker.py): each event counts its Kafka value, its
# tracestate and ~100 bytes (workers/chunk.py), so the Celery message stays under ~2x this whatever
# the events' sizes. RabbitMQ refuses messages over its max_message_size (128 MiB; 16 MiB from 4.0),
# and a chunk of large events (ingest takes up to 512 KiB each) bounded by count alone would be
# refused at every attempt and stop its partition. A larger message is dead-lettered (the local
# broker takes messages up to 4 MiB, its dead-letter topic up to 8).
CHUNK_MAX_BYTES = _int("SENTINEL_CHUNK_MAX_BYTES", 4 * 1024 * 1024)
# A partition's chunk closes when full or this long after its first event. Below full, each chunk's
# INSERT, Celery task and publish is a fixed cost shared by fewer events: a longer wait gives fewer,
# larger INSERTs (ClickHouse's own advice), for a longer wait before a row is visible.
CHUNK_MAX_WAIT_S = _float("SENTINEL_CHUNK_MAX_WAIT_S", 0.5)
# ... or once its partition has given it no event for this long (0: never): the end of a burst (a
# backlog drained after an outage, the benchmark's Celery hop) does not wait out the timer above.
# The broker answers a fetch within 50 ms (fetch.wait.max.ms), so a partition taking more than ~20
# events/s adds events to its chunk at nearly every fetch and its chunks still fill up to the timer;
# a chunk quiet for 3 fetches has no more events coming soon.
CHUNK_MAX_IDLE_S = _float("SENTINEL_CHUNK_MAX_IDLE_S", 0.15)
# Chunks sent and not yet acknowledged, per consumer; at this many the consumer pauses. With
# CHUNK_MAX_BYTES it bounds what a consumer holds: 8 x 4 MiB. Two worker processes insert one chunk
# each at a time, so 8 per consumer keep a queue in front of them.
MAX_INFLIGHT_CHUNKS = _int("SENTINEL_MAX_INFLIGHT_CHUNKS", 8)
# A chunk with no acknowledgement after this long is sent again (same dedup token).
CHUNK_ACK_TIMEOUT_S = _float("SENTINEL_CHUNK_ACK_TIMEOUT_S", 120.0)
COMMIT_INTERVAL_S = _float("SENTINEL_COMMIT_INTERVAL_S", 0.5)

# Beat jobs.
CANARY_INTERVAL_S = _float("SENTINEL_CANARY_INTERVAL_S", 30.0)
CANARY_TIMEOUT_S = _float("SENTINEL_CANARY_TIMEOUT_S", 20.0)
LAG_INTERVAL_S = _float("SENTINEL_LAG_INTERVAL_S", 15.0)

# Flower: "user:password"; when unset, `sentinel up` generates one under the stack folder.
FLOWER_BASIC_AUTH = _str("SENTINEL_FLOWER_BASIC_AUTH", "")

# Worker.
INSERT_MAX_RETRIES = _int("SENTINEL_INSERT_MAX_RETRIES", 8)
WORKER_CONCURRENCY = _int("SENTINEL_WORKER_CONCURRENCY", 2)

# MCP proxy: the audit emitter (mcp_proxy/emitter.py).
PROXY_INGEST_URL = _str("SENTINEL_PROXY_INGEST_URL", INGEST_URL)
# The bearer token the proxy's emitter posts with (one of ingest's SENTINEL_INGEST_TOKENS); empty: none.
PROXY_INGEST_TOKEN = _str("SENTINEL_PROXY_INGEST_TOKEN", "")
# The proxy's data folder, where the spool lives. Not under the stack folder: MCP clients launch
# `sentinel proxy` from any directory, with or without a checkout, and the spool must outlive it.
PROXY_DATA_DIR = Path(
    _str(
        "SENTINEL_PROXY_DATA_DIR",
        str(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "sentinel" / "proxy"),
    )
)
# Bytes the spool may hold on disk; ~500k audit events of ~500 bytes, hours of an outage at the
# rates one proxy sees.
PROXY_SPOOL_MAX_BYTES = _int("SENTINEL_PROXY_SPOOL_MAX_BYTES", 256 * 1024**2)
# What a full spool gives up: "drop-newest" (refuse what arrives; what is on disk stays promised)
# or "drop-oldest" (evict the oldest segments to make room).
PROXY_SPOOL_FULL = _str("SENTINEL_PROXY_SPOOL_FULL", "drop-newest")
PROXY_BATCH_MAX_EVENTS = _int("SENTINEL_PROXY_BATCH_MAX_EVENTS", 500)
PROXY_BATCH_MAX_S = _float("SENTINEL_PROXY_BATCH_MAX_S", 0.1)
PROXY_QUEUE_MAX = _int("SENTINEL_PROXY_QUEUE_MAX", 10_000)
PROXY_RETRY_MIN_S = _float("SENTINEL_PROXY_RETRY_MIN_S", 0.2)
PROXY_RETRY_MAX_S = _float("SENTINEL_PROXY_RETRY_MAX_S", 5.0)
# Ingest answers 503 once Kafka has not acknowledged within INGEST_PUBLISH_TIMEOUT_S; wait past that.
PROXY_POST_TIMEOUT_S = _float("SENTINEL_PROXY_POST_TIMEOUT_S", INGEST_PUBLISH_TIMEOUT_S + 5.0)
# /metrics of a stdio proxy (0: none). Clients start one stdio proxy per configured server, so a
# fixed default port would collide; the HTTP mode serves /metrics on its own port.
PROXY_METRICS_PORT = _int("SENTINEL_PROXY_METRICS_PORT", 0)
# A request with no outcome after this long is audited as `failed` (the relay itself imposes no
# deadline: a late response still reaches the client, unaudited a second time). 0: never.
PROXY_REQUEST_TIMEOUT_S = _float("SENTINEL_PROXY_REQUEST_TIMEOUT_S", 300.0)
# Captured arguments and results are cut to this many bytes of JSON, so an event stays well inside
# ingest's SENTINEL_INGEST_MAX_EVENT_BYTES.
PROXY_CAPTURE_MAX_BYTES = _int("SENTINEL_PROXY_CAPTURE_MAX_BYTES", 16 * 1024)
# HTTP mode: a client session with no request in flight for this long is closed with its upstream.
PROXY_SESSION_IDLE_S = _float("SENTINEL_PROXY_SESSION_IDLE_S", 30 * 60.0)
# Where the MCP servers the tests and the demo run (npm packages) are installed.
MCP_PEERS_DIR = Path(_str("SENTINEL_MCP_PEERS_DIR", str(STACK_DIR / "mcp-peers")))

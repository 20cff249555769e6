"""The one Celery app: RabbitMQ broker, Redis results, late acks, and tracing per worker process.

Beat adds its schedule to this app in its own module (`celery -A beat.app beat`), and the worker
runs beat's jobs by importing their module from its command line (`--include beat.tasks`), so this
package never imports beat."""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson
from celery import Celery
from celery.signals import beat_init, setup_logging, worker_init, worker_process_init, worker_process_shutdown
from kombu.serialization import register

from sentinel import semconv, settings

INSERT_TASK = "sentinel.insert_chunk"
INSERT_QUEUE = "sentinel.inserts"
# Every task but the insert: beat's jobs.
JOBS_QUEUE = "sentinel.default"

# Chunk arguments are the bulk of every task message; orjson encodes them several times faster
# than the json module (profiled: stdlib json was ~8% of the bridge's loop).
register("orjson", orjson.dumps, orjson.loads, content_type="application/x-orjson", content_encoding="binary")

app = Celery("sentinel", broker=settings.CELERY_BROKER_URL, backend=settings.REDIS_URL, include=["workers.tasks"])
app.conf.update(
    timezone="UTC",
    enable_utc=True,
    task_serializer="orjson",
    result_serializer="json",
    accept_content=["orjson", "json"],
    # A chunk is acknowledged to RabbitMQ only after its rows are written; a worker that dies
    # mid-insert leaves the message to be delivered again.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_routes={INSERT_TASK: {"queue": INSERT_QUEUE}},
    task_default_queue=JOBS_QUEUE,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"confirm_publish": True},
    # Flower reads the workers' events. No task-sent events: each would be a second publish per
    # chunk from the bridge's loop (profiled at ~9% of it).
    worker_send_task_events=True,
    task_send_sent_event=False,
)


def _service_name() -> str:
    # One app serves the worker, beat and Flower; each process reports under its own name.
    if "beat" in sys.argv:
        return semconv.SERVICE_BEAT
    if "flower" in sys.argv:
        return semconv.SERVICE_FLOWER
    return semconv.SERVICE_WORKER


@setup_logging.connect
def _on_setup_logging(loglevel: Any = None, **_: Any) -> None:
    # Connected, so Celery leaves logging to us: JSON lines with trace ids, like every process.
    from sentinel.logs import setup_logging as setup_json_logging

    setup_json_logging(_service_name(), level=loglevel if isinstance(loglevel, str) else None)


def _setup_process_telemetry() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from sentinel.logs import setup_logging
    from sentinel.telemetry import setup_tracing

    setup_logging(_service_name())
    setup_tracing(_service_name())
    CeleryInstrumentor().instrument()


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    # Prefork children: the SDK's exporter thread must start after the fork, here, not at import.
    _setup_process_telemetry()
    from sentinel.gc_tuning import tune_gc

    tune_gc()


@worker_process_shutdown.connect
def _on_worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    from sentinel.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    from sentinel.metrics import serve

    # The main process serves /metrics for all children (multiprocess mode).
    serve(settings.WORKER_METRICS_PORT)
    # Solo and thread pools have no child processes, so no worker_process_init.
    pool = getattr(getattr(sender, "pool_cls", None), "__module__", "") if sender else ""
    if "solo" in pool or "threads" in pool:
        _setup_process_telemetry()


@beat_init.connect
def _on_beat_init(**_: Any) -> None:
    from sentinel.metrics import serve

    # Beat traces its publishes, so each periodic job (the canary) starts a trace here.
    _setup_process_telemetry()
    serve(settings.BEAT_METRICS_PORT)

"""The one Celery app: RabbitMQ broker, Redis results, late acks, and tracing per worker process."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_process_init

from beat.schedule import BEAT_SCHEDULE
from sentinel import semconv, settings

INSERT_TASK = "sentinel.insert_chunk"
INSERT_QUEUE = "sentinel.inserts"

app = Celery(
    "sentinel", broker=settings.CELERY_BROKER_URL, backend=settings.REDIS_URL, include=["workers.tasks", "beat.tasks"]
)
app.conf.update(
    timezone="UTC",
    enable_utc=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # A chunk is acknowledged to RabbitMQ only after its rows are written; a worker that dies
    # mid-insert leaves the message to be delivered again.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_routes={INSERT_TASK: {"queue": INSERT_QUEUE}},
    task_default_queue="sentinel.default",
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"confirm_publish": True},
    # Flower reads these.
    worker_send_task_events=True,
    task_send_sent_event=True,
    beat_schedule=BEAT_SCHEDULE,
)


@setup_logging.connect
def _on_setup_logging(loglevel: Any = None, **_: Any) -> None:
    # Connected, so Celery leaves logging to us: JSON lines with trace ids, like every process.
    from sentinel.logs import setup_logging as setup_json_logging

    setup_json_logging(semconv.SERVICE_WORKER, level=loglevel if isinstance(loglevel, str) else None)


def _setup_process_telemetry() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from sentinel.logs import setup_logging
    from sentinel.telemetry import setup_tracing

    setup_logging(semconv.SERVICE_WORKER)
    setup_tracing(semconv.SERVICE_WORKER)
    CeleryInstrumentor().instrument()


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    # Prefork children: the SDK's exporter thread must start after the fork, here, not at import.
    _setup_process_telemetry()


@worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    # Solo and thread pools have no child processes, so no worker_process_init.
    pool = getattr(getattr(sender, "pool_cls", None), "__module__", "") if sender else ""
    if "solo" in pool or "threads" in pool:
        _setup_process_telemetry()

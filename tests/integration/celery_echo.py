"""A Celery app for the broker round-trip test: same broker and backend as Sentinel, its own queue."""

from __future__ import annotations

from celery import Celery

from sentinel import settings

QUEUE = "sentinel.test.echo"

app = Celery("sentinel-test-echo", broker=settings.CELERY_BROKER_URL, backend=settings.REDIS_URL)
app.conf.update(task_default_queue=QUEUE, task_acks_late=True, broker_connection_retry_on_startup=True)


@app.task(name="sentinel.test.echo")
def echo(value: str) -> dict[str, str]:
    import os

    return {"echo": value, "pid": str(os.getpid())}

"""gunicorn settings for ingest, overridable by environment."""

import os

from sentinel import settings

bind = f"{settings.HOST}:{settings.INGEST_PORT}"
workers = int(os.environ.get("SENTINEL_INGEST_WORKERS", "2"))
worker_class = "sync"  # one request per process: flush() waits for this request's events only
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = None
preload_app = False  # each worker builds its own Kafka producer and span exporter


def child_exit(server, worker):
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)

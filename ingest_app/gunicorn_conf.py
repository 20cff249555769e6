"""gunicorn settings for ingest, overridable by environment."""

import os

from sentinel import settings

# Loopback only: clients reach ingest through nginx (ingest_app/serve.py locally, a sidecar in k8s),
# which buffers whole requests so no gunicorn thread waits on a slow or stalled client.
bind = f"127.0.0.1:{settings.INGEST_UPSTREAM_PORT}"
workers = int(os.environ.get("SENTINEL_INGEST_WORKERS", "2"))
# Threads: a request mostly waits for Kafka's acknowledgement, and concurrent requests share
# one producer whose batches (linger.ms) then carry several requests' events.
worker_class = "gthread"
threads = int(os.environ.get("SENTINEL_INGEST_THREADS", "16"))
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = None
preload_app = False  # each worker builds its own Kafka producer and span exporter


def child_exit(server, worker):
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)

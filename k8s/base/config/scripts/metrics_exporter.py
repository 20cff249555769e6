"""Serve the Prometheus multiprocess directory of this pod's Sentinel process over HTTP.

The bridge and the Celery worker have no HTTP server of their own. With PROMETHEUS_MULTIPROC_DIR
set they write their metric values to files there; this sidecar shares that emptyDir, merges the
files and serves the result on the port given as the only argument, as ingest's /metrics does
for gunicorn's workers. It creates no metrics itself, so it adds no files to the directory.
"""

from __future__ import annotations

import sys
import time

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector


def main(port: int) -> None:
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(int(sys.argv[1]))

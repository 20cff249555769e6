"""`python -m ingest_app.server`: ingest's WSGI server, granian, behind nginx (a Unix socket or loopback).

granian parses HTTP in Rust and runs the Flask app on a pool of Python threads in each worker
process. It replaced gunicorn's gthread workers, whose per-request plumbing in Python (selector,
thread pool hand-offs, header writes) cost more CPU than the app itself: with one event per POST,
ingest fell from ~1.33 to ~0.91 ms of CPU per request and end-to-end throughput rose by about half
(docs/performance.md). nginx stays in front: it buffers whole requests, so no app thread waits on a
slow client, and it caps bodies and headers.

Locally (`ingest_app.serve`) nginx reaches granian on a Unix socket: against loopback TCP, ingest
spent ~4% less CPU per single-event request (docs/performance.md, eleventh round). In k8s the two
containers of the pod meet on loopback TCP, where the app server's own probes reach it.

Each worker imports `ingest_app.wsgi` itself (never inherited across a fork), so its Kafka producer
and span exporter threads are its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sentinel import settings

APP = "ingest_app.wsgi:app"
# Seconds a worker gets to finish its requests on SIGTERM (the k8s pod's grace period is longer).
GRACEFUL_TIMEOUT_S = 30


def argv(upstream_socket: Path | None = None) -> list[str]:
    """The granian command line for this environment (workers and threads from settings), bound to
    `upstream_socket` when given, else to loopback's INGEST_UPSTREAM_PORT."""
    bind = (
        # nginx's worker drops to `nobody` when started as root, and connecting needs write access
        # (granian reads an octal value only with a leading 0).
        ["--uds", str(upstream_socket), "--uds-permissions", "0666"]
        if upstream_socket is not None
        else ["--host", "127.0.0.1", "--port", str(settings.INGEST_UPSTREAM_PORT)]
    )
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        *bind,
        "--workers",
        str(settings.INGEST_WORKERS),
        "--blocking-threads",
        str(settings.INGEST_THREADS),
        "--http",
        "1",  # nginx speaks HTTP/1.1 to its upstream
        "--no-ws",
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(GRACEFUL_TIMEOUT_S),
        "--no-access-log",  # nginx sees every request; the app logs what matters
        APP,
    ]


def main() -> None:
    command = argv()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()

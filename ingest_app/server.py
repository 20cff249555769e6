"""`python -m ingest_app.server`: ingest's WSGI server, granian, behind nginx (a Unix socket or loopback).

granian parses HTTP in Rust and runs the Flask app (`ingest_app.wsgi:app`) on a pool of Python
threads in each worker process, started with its own command line (`granian --interface wsgi`).
nginx stays in front: it buffers whole requests, so no app thread waits on a slow client, and it
caps bodies and headers.

Locally (`sentinel_local.ingest_serve`) nginx reaches granian on Unix sockets, each worker process a granian
server of its own on its own socket, and nginx sends each request to the one with the fewest in
flight (`upstreams`). In k8s the two containers of the pod meet on loopback TCP, where the app
server's own probes reach it, and one granian runs every worker.

Each worker imports the app itself (never inherited across a fork), so its Kafka producer and span
exporter threads are its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sentinel import settings

APP = "ingest_app.wsgi:app"
# Seconds a worker gets to finish its requests on SIGTERM (the k8s pod's grace period is longer).
GRACEFUL_TIMEOUT_S = 30


def argv(bind: Path | int | None = None, *, workers: int | None = None) -> list[str]:
    """The granian command line for this environment: `workers` worker processes (default
    settings.INGEST_WORKERS) of settings.INGEST_THREADS threads each, bound to the Unix socket
    `bind` (a Path), the loopback port `bind` (an int), or by default loopback's INGEST_UPSTREAM_PORT."""
    if isinstance(bind, Path):
        # nginx's worker drops to `nobody` when started as root, and connecting needs write access
        # (granian reads an octal value only with a leading 0).
        address = ["--uds", str(bind), "--uds-permissions", "0666"]
    else:
        address = ["--host", "127.0.0.1", "--port", str(settings.INGEST_UPSTREAM_PORT if bind is None else bind)]
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        *address,
        "--workers",
        str(settings.INGEST_WORKERS if workers is None else workers),
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


def upstreams(socket_folder: Path | None, first_port: int | None = None) -> list[Path] | list[int]:
    """Where the local stack's app servers listen, one server of one worker process each:
    INGEST_WORKERS Unix sockets in `socket_folder`, or loopback ports from `first_port` (default
    INGEST_UPSTREAM_PORT) on when there is no folder or a socket's path would be too long to bind
    (107 bytes at most).

    One server per process, not one server of INGEST_WORKERS processes: those share one socket,
    and the kernel hands nginx's keep-alive connections to whichever worker accepts first, so under
    single-event load one process (one GIL) served most requests while the other idled. With a
    socket per process nginx balances every request (`least_conn`): in the benchmark's 2.5 s
    single-event load at 100% sampling, 3,991-6,603 events accepted against 1,938-2,090 with one
    granian of two workers.
    """
    count = settings.INGEST_WORKERS
    if socket_folder is not None:
        sockets = [socket_folder / f"ingest-{i}.sock" for i in range(count)]
        if all(len(os.fsencode(path)) < 108 for path in sockets):
            return sockets
    first = settings.INGEST_UPSTREAM_PORT if first_port is None else first_port
    return [first + i for i in range(count)]


def main() -> None:
    command = argv()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()

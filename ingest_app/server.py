"""`python -m ingest_app.server`: ingest's app server, granian, behind nginx (a Unix socket or loopback).

granian parses HTTP in Rust. By default it serves POST /events on an asyncio loop and the rest of the
Flask app on a pool of Python threads in each worker process (RSGI, `ingest_app.rsgi_app` says
why); with SENTINEL_INGEST_INTERFACE=wsgi it runs every request of the Flask app on its own pool of
threads. It replaced gunicorn's gthread workers, whose per-request plumbing in Python (selector,
thread pool hand-offs, header writes) cost more CPU than the app itself: with one event per POST,
ingest fell from ~1.33 to ~0.91 ms of CPU per request and end-to-end throughput rose by about half
(docs/performance.md). nginx stays in front: it buffers whole requests, so no app thread waits on a
slow client, and it caps bodies and headers.

Locally (`sentinel_local.ingest_serve`) nginx reaches granian on Unix sockets: against loopback TCP, ingest
spent ~4% less CPU per single-event request. There each worker
process is a granian server of its own, on its own socket, and nginx sends each request to the one
with the fewest in flight (`upstreams`). In k8s the two containers of the pod meet on loopback TCP,
where the app server's own probes reach it, and one granian runs every worker.

Each worker imports the app itself (never inherited across a fork), so its Kafka producer and span
exporter threads are its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sentinel import settings

# What granian imports in each worker, by SENTINEL_INGEST_INTERFACE.
APPS = {"rsgi": "ingest_app.rsgi:app", "wsgi": "ingest_app.wsgi:app"}
# Seconds a worker gets to finish its requests on SIGTERM (the k8s pod's grace period is longer).
GRACEFUL_TIMEOUT_S = 30


def argv(bind: Path | int | None = None, *, workers: int | None = None) -> list[str]:
    """The granian command line for this environment: `workers` worker processes (default
    settings.INGEST_WORKERS) serving settings.INGEST_INTERFACE's app, bound to the Unix socket
    `bind` (a Path), the loopback port `bind` (an int), or by default loopback's INGEST_UPSTREAM_PORT."""
    interface = settings.INGEST_INTERFACE
    if interface not in APPS:
        raise ValueError(f"SENTINEL_INGEST_INTERFACE is {interface!r}; use {' or '.join(map(repr, APPS))}")
    # The WSGI interface runs the app on granian's threads; the RSGI app has its own for Flask.
    threads = ["--blocking-threads", str(settings.INGEST_THREADS)] if interface == "wsgi" else []
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
        interface,
        *address,
        "--workers",
        str(settings.INGEST_WORKERS if workers is None else workers),
        *threads,
        "--http",
        "1",  # nginx speaks HTTP/1.1 to its upstream
        "--no-ws",
        "--respawn-failed-workers",
        "--workers-kill-timeout",
        str(GRACEFUL_TIMEOUT_S),
        "--no-access-log",  # nginx sees every request; the app logs what matters
        APPS[interface],
    ]


def upstreams(socket_folder: Path | None, first_port: int | None = None) -> list[Path] | list[int]:
    """Where the local stack's app servers listen, one granian of one worker process each:
    INGEST_WORKERS Unix sockets in `socket_folder`, or loopback ports from `first_port` (default
    INGEST_UPSTREAM_PORT) on when there is no folder or a socket's path would be too long to bind
    (107 bytes at most).

    One server per process, not one granian of INGEST_WORKERS processes: those share one socket,
    and the kernel hands nginx's keep-alive connections to whichever worker accepts first. Under
    single-event load the 32 connections split 23/9, 27/5, even 31/1, so one process (one GIL, 16
    threads) served most requests while the other idled. With a socket per process nginx balances
    every request (`least_conn`): 16/16, and ~12% more single-event requests per second, 6 of 7
    alternating pairs.
    """
    count = settings.INGEST_WORKERS
    if socket_folder is not None:
        sockets = [socket_folder / f"granian-{i}.sock" for i in range(count)]
        if all(len(os.fsencode(path)) < 108 for path in sockets):
            return sockets
    first = settings.INGEST_UPSTREAM_PORT if first_port is None else first_port
    return [first + i for i in range(count)]


def main() -> None:
    command = argv()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()

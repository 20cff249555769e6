"""`python -m bench.app_cost`: ingest's Flask app alone, CPU per single-event request.

No server, no Kafka: THREADS threads call the WSGI app as granian's blocking threads would, and the
publisher sleeps as long as a Kafka acknowledgement takes, so the threads contend for the GIL as
they do in ingest. Spans go through the real batch processor and OTLP exporter to the configured
endpoint (Jaeger's, when the stack runs); OTEL_SDK_DISABLED=true measures the untraced app. Each
round runs in a fresh process: the tracer provider and the instrumentation are process-wide.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from werkzeug.test import EnvironBuilder

_EVENT = {"type": "tool_call", "server": "bench", "tool": "search", "status": "ok", "session_id": "s"}
_BODY = json.dumps(_EVENT)


class SleepingPublisher:
    """Acknowledges after `ack_s`, like Kafka with linger.ms and acks=all on loopback."""

    topic = "mcp.events"

    def __init__(self, ack_s: float) -> None:
        self.ack_s = ack_s

    def publish(self, messages: Sequence[object]) -> None:
        time.sleep(self.ack_s)

    def ready(self) -> bool:
        return True


def _environ_factory(body: bytes) -> Callable[[], dict[str, Any]]:
    """A fresh environ per request, as the server would pass, without building one each time."""
    base = EnvironBuilder(
        path="/events",
        method="POST",
        base_url="http://127.0.0.1:8080",
        data=body,
        content_type="application/json",
        headers={"User-Agent": "bench"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()

    def environ() -> dict[str, Any]:
        return {**base, "wsgi.input": io.BytesIO(body)}

    return environ


def measure(threads: int, seconds: float, ack_s: float, events: int = 1) -> dict[str, float]:
    """Run the app in this process, `events` per POST (one: a JSON object, more: an
    array); CPU of the whole process (export thread too)."""
    from ingest_app import create_app
    from sentinel import semconv
    from sentinel.telemetry import setup_tracing

    setup_tracing(semconv.SERVICE_INGEST)
    app = create_app({"SENTINEL_PUBLISHER": SleepingPublisher(ack_s)})
    environ = _environ_factory((_BODY if events == 1 else json.dumps([_EVENT] * events)).encode())
    stop = time.monotonic() + seconds
    counts: list[int] = []
    errors: list[BaseException] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        if not status.startswith("202"):
            raise RuntimeError(f"ingest answered {status}")

    def serve() -> None:
        done = 0
        try:
            while time.monotonic() < stop:
                b"".join(app(environ(), start_response))
                done += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised by the measuring thread
            errors.append(exc)
        counts.append(done)

    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    pool = [threading.Thread(target=serve) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - started
    if errors:
        raise errors[0]
    requests = sum(counts)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"requests_per_s": round(requests / elapsed), "cpu_us_per_request": round(1e6 * cpu_s / requests)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--ack-ms", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=1, help="events per POST (default 1)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process's run
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.threads, args.seconds, args.ack_ms / 1000, args.events)))
        return 0
    results: list[dict[str, float]] = []
    for _ in range(args.rounds):
        child = [sys.executable, "-m", "bench.app_cost", "--one", "--threads", str(args.threads)]
        child += ["--seconds", str(args.seconds), "--ack-ms", str(args.ack_ms), "--events", str(args.events)]
        out = subprocess.run(child, check=True, capture_output=True, text=True, env=os.environ.copy())
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {"threads": args.threads, "ack_ms": args.ack_ms, "events_per_post": args.events, "rounds": results}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

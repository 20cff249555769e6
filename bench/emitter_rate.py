"""`python -m bench.emitter_rate [--url URL] [--events N] [--batch N]`: what the proxy's audit
emitter costs the proxy and how fast it can post.

Prints one JSON document: `submit_us`, the cost of `submit` on the caller's thread with the
emitter's threads not running (the deque append and its checks); and `posted_per_s`, events per
second from the first `submit` of N to ingest's 202 for the last, with all N submitted at once so
the emitter is saturated (one POST in flight, batches of `--batch`); and `wake_lag_us`, how late a
loop that sleeps between `--rate` submits a second wakes up (p50, p99, max), without an emitter and
with one posting: what the emitter's threads, holding the GIL, cost the proxy's event loop. Point
`--url` at a running ingest; nothing here starts one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from mcp_proxy.emitter import Emitter, EmitterConfig
from sentinel import settings


def audit_event() -> dict[str, Any]:
    """A tools/call audit event of the size and shape the proxy captures."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": "bench.emitter",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "session_id": f"session-{uuid.uuid4().hex[:8]}",
        "server": "bench",
        "method": "tools/call",
        "tool": "echo",
        "status": "ok",
        "duration_ms": 1.5,
        "attributes": {"arguments": {"message": "hello"}},
    }


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def submit_cost_us(events: int) -> float:
    batch = [audit_event() for _ in range(events)]
    with tempfile.TemporaryDirectory() as folder:
        config = EmitterConfig(
            ingest_url="http://127.0.0.1:9", token=None, spool_dir=Path(folder), spool_max_bytes=1, queue_max=events
        )
        emitter = Emitter(config)  # not started: only the caller's side is timed
        started = time.perf_counter()
        for event in batch:
            emitter.submit(event)
        return (time.perf_counter() - started) / events * 1e6


def posted_per_s(url: str, events: int, batch_max_events: int) -> dict[str, float]:
    batch = [audit_event() for _ in range(events)]
    with tempfile.TemporaryDirectory() as folder:
        config = EmitterConfig(
            ingest_url=url,
            token=settings.PROXY_INGEST_TOKEN or None,
            spool_dir=Path(folder),
            spool_max_bytes=1 << 30,
            batch_max_events=batch_max_events,
            queue_max=events,
        )
        emitter = Emitter(config)
        emitter.start()
        posted = _counter("sentinel_proxy_events_posted_total")
        spooled = _counter("sentinel_proxy_events_spooled_total")
        started = time.perf_counter()
        for event in batch:
            emitter.submit(event)
        deadline = started + 600
        while _counter("sentinel_proxy_events_posted_total") - posted < events and time.perf_counter() < deadline:
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        done = _counter("sentinel_proxy_events_posted_total") - posted
        emitter.close(10)
    return {
        "events": events,
        "posted": done,
        "seconds": round(elapsed, 3),
        "posted_per_s": round(done / elapsed),
        "spooled_on_the_way": _counter("sentinel_proxy_events_spooled_total") - spooled,
        "batches": _counter("sentinel_proxy_batches_posted_total"),
    }


def wake_lag_us(url: str, rate: float, seconds: float, *, emitting: bool) -> dict[str, float]:
    events = [audit_event() for _ in range(int(rate * seconds))]
    with tempfile.TemporaryDirectory() as folder:
        config = EmitterConfig(
            ingest_url=url, token=settings.PROXY_INGEST_TOKEN or None, spool_dir=Path(folder), spool_max_bytes=1 << 30
        )
        emitter = Emitter(config)
        if emitting:
            emitter.start()
        lags: list[float] = []
        started = time.perf_counter()
        for index, event in enumerate(events):
            due = started + index / rate
            ahead = due - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)  # as an event loop waits in select(), the GIL released
            lags.append(time.perf_counter() - due)
            if emitting:
                emitter.submit(event)
        emitter.close(10)
    lags.sort()
    return {
        "p50": round(lags[len(lags) // 2] * 1e6),
        "p99": round(lags[int(len(lags) * 0.99)] * 1e6),
        "max": round(lags[-1] * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.emitter_rate", description=__doc__)
    parser.add_argument("--url", default=settings.PROXY_INGEST_URL)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2000.0, help="submits a second for wake_lag_us")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "submit_us": round(submit_cost_us(200_000), 3),
        **posted_per_s(args.url, args.events, args.batch),
    }
    # Alternated, so the machine's drift over the run falls on both.
    for round_number in range(3):
        for emitting in (False, True):
            key = f"wake_lag_us_{'emitting' if emitting else 'idle'}_{round_number}"
            report[key] = wake_lag_us(args.url, args.rate, 5.0, emitting=emitting)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

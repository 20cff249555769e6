"""HTTP load for ingest, from separate processes: batched or single-event POSTs, max speed or a fixed rate.

Each load process holds one `http.client` connection (reopened when gunicorn's sync workers close it)
and posts JSON bodies built from a template, so the generator spends little CPU per event on a
machine it shares with the pipeline. Every event carries a client-side `event_id` and the run's
unique `type`, so its row can be found.

At a fixed rate the schedule is open loop: request i of the whole run is due at
`t0 + i * batch / rate`, whatever the responses do, and each probe's send time is that due time (a
slow response delays later sends but not their recorded send time, so a stall shows up as latency
instead of silently lowering the offered rate). At max speed each process posts back to back.
Both are bounded by an event count and a deadline, and stop by themselves.

Every `probe_every`-th event is a probe: its id and send time go to the probe queue for
`bench.observe.ProbeWatcher`. At a fixed rate a probe is registered before its POST and withdrawn
if the POST fails; at max speed probes are registered after the 202, in small batches.

Times are `time.monotonic()`, which on Linux is one clock for every process on the machine.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import multiprocessing as mp
import os
import queue
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# Probe queue messages: ("probe", [(send_time, event_id), ...]) or ("cancel", [event_id, ...]).
PROBE = "probe"
CANCEL = "cancel"


@dataclass(frozen=True)
class LoadSpec:
    """One load run. `rate_eps=None` posts as fast as the connections allow."""

    url: str
    event_type: str
    batch_size: int
    procs: int
    max_events: int
    max_seconds: float
    rate_eps: float | None = None
    probe_every: int = 10  # 0: no probes

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.procs < 1 or self.max_events < 1 or self.max_seconds <= 0:
            raise ValueError(f"invalid load spec: {self}")
        if self.rate_eps is not None and self.rate_eps <= 0:
            raise ValueError("rate_eps must be positive")


@dataclass
class LoadResult:
    """What the load processes did, summed over processes."""

    requests: int = 0
    events_sent: int = 0
    events_accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    connection_errors: int = 0
    first_send: float | None = None  # monotonic
    last_done: float | None = None  # monotonic, end of the last response
    send_lag_ms_max: float = 0.0  # fixed rate: how late the generator sent against its schedule
    send_lag_ms_p99: float = 0.0
    late_requests: int = 0  # fixed rate: requests sent more than 10 ms after their due time

    @property
    def duration_s(self) -> float:
        if self.first_send is None or self.last_done is None:
            return 0.0
        return max(self.last_done - self.first_send, 1e-9)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["duration_s"] = round(self.duration_s, 3)
        out["ingest_eps"] = round(self.events_accepted / self.duration_s, 1) if self.events_accepted else 0.0
        return out


def run_load(spec: LoadSpec, probes: Any | None, *, start_timeout_s: float = 30.0) -> LoadResult:
    """Start `spec.procs` processes, release them together, wait until they finish; blocks.

    `probes` is a multiprocessing queue from the same spawn context (`probe_queue()`), or None.
    Raises RuntimeError if a load process fails to start or dies.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    workers = [
        ctx.Process(target=_worker, args=(spec, index, probes, results, go, start_at), daemon=True)
        for index in range(spec.procs)
    ]
    for worker in workers:
        worker.start()
    try:
        ready = 0
        deadline = time.monotonic() + start_timeout_s
        while ready < spec.procs:
            try:
                kind, _ = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("load processes did not start in time") from None
            if kind == "ready":
                ready += 1
        # A common start, slightly ahead so every process is waiting on the clock, not the event.
        start_at.value = time.monotonic() + 0.05
        go.set()
        partials: list[dict[str, Any]] = []
        hard_deadline = start_at.value + spec.max_seconds + 120.0
        while len(partials) < spec.procs:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > hard_deadline or not any(w.is_alive() for w in workers):
                    raise RuntimeError(f"{spec.procs - len(partials)} load process(es) died or hung") from None
                continue
            if kind == "done":
                partials.append(payload)
            elif kind == "error":
                raise RuntimeError(f"load process failed: {payload}")
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    return merge_results(partials)


def probe_queue() -> Any:
    """A queue the load processes can put probes on (spawn context, like the processes)."""
    return mp.get_context("spawn").Queue()


def merge_results(partials: list[dict[str, Any]]) -> LoadResult:
    total = LoadResult()
    lags: list[float] = []
    for part in partials:
        total.requests += part["requests"]
        total.events_sent += part["events_sent"]
        total.events_accepted += part["events_accepted"]
        total.connection_errors += part["connection_errors"]
        total.late_requests += part["late_requests"]
        for status, count in part["statuses"].items():
            total.statuses[status] = total.statuses.get(status, 0) + count
        firsts = [t for t in (total.first_send, part["first_send"]) if t is not None]
        lasts = [t for t in (total.last_done, part["last_done"]) if t is not None]
        total.first_send = min(firsts) if firsts else None
        total.last_done = max(lasts) if lasts else None
        lags.extend(part["lags_ms"])
    if lags:
        lags.sort()
        total.send_lag_ms_max = round(lags[-1], 2)
        total.send_lag_ms_p99 = round(lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)], 2)
    return total


# -- inside a load process ------------------------------------------------------------------------


class _Poster:
    """One keep-alive connection to ingest; reconnects when the server closed it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = (parts.path.rstrip("/") or "") + "/events"
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, body: bytes) -> int:
        """The HTTP status; raises OSError / http.client.HTTPException on a broken connection."""
        try:
            self.conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise


class _Bodies:
    """Request bodies from a template: a unique event_id per event, 64 sessions per process."""

    def __init__(self, event_type: str, proc: int) -> None:
        self.prefix = (
            '{"type":"' + event_type + '","server":"bench-mcp","method":"tools/call","tool":"search",'
            '"status":"ok","duration_ms":12.5,"attributes":{"client":"bench","proc":' + str(proc) + ',"seq":'
        )
        self.proc = proc
        self.seq = 0

    def build(self, count: int) -> tuple[bytes, list[str]]:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        ids = [str(uuid.uuid4()) for _ in range(count)]
        parts = []
        for event_id in ids:
            self.seq += 1
            parts.append(
                f'{self.prefix}{self.seq}}},"event_id":"{event_id}","timestamp":"{stamp}",'
                f'"session_id":"bench-{self.proc}-{self.seq % 64}"}}'
            )
        body = parts[0] if count == 1 else "[" + ",".join(parts) + "]"
        return body.encode(), ids


def _worker(spec: LoadSpec, index: int, probes: Any, results: Any, go: Any, start_at: Any) -> None:
    try:
        results.put(("ready", index))
        go.wait(60)
        _sleep_until(start_at.value)
        results.put(("done", _drive(spec, index, probes, start_at.value)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _drive(spec: LoadSpec, index: int, probes: Any, t0: float) -> dict[str, Any]:
    poster = _Poster(spec.url)
    bodies = _Bodies(spec.event_type, index)
    my_events = -(-spec.max_events // spec.procs)
    end = t0 + spec.max_seconds
    interval = spec.batch_size / spec.rate_eps if spec.rate_eps else 0.0
    out: dict[str, Any] = {
        "requests": 0,
        "events_sent": 0,
        "events_accepted": 0,
        "statuses": {},
        "connection_errors": 0,
        "first_send": None,
        "last_done": None,
        "late_requests": 0,
        "lags_ms": [],
    }
    unsent_probes: list[tuple[float, str]] = []
    last_flush = t0
    request_no = 0
    while out["events_sent"] < my_events:
        count = min(spec.batch_size, my_events - out["events_sent"])
        if spec.rate_eps:
            due = t0 + (index + request_no * spec.procs) * interval
            if due >= end:
                break
            _sleep_until(due)
            lag = (time.monotonic() - due) * 1000.0
            out["lags_ms"].append(lag)
            if lag > 10.0:
                out["late_requests"] += 1
        else:
            due = time.monotonic()
            if due >= end:
                break
        request_no += 1
        body, ids = bodies.build(count)
        every, sent = spec.probe_every, out["events_sent"]
        mine = [(due, ids[i]) for i in range(count) if every and (sent + i) % every == 0]
        if spec.rate_eps and mine and probes is not None:
            probes.put((PROBE, mine))  # before the POST: the row may be visible before we read the 202
        sent_at = time.monotonic()
        if out["first_send"] is None:
            out["first_send"] = sent_at
        out["requests"] += 1
        out["events_sent"] += count
        try:
            status = poster.post(body)
        except (OSError, http.client.HTTPException):
            status = 0
            out["connection_errors"] += 1
        out["last_done"] = time.monotonic()
        out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
        if status == 202:
            out["events_accepted"] += count
            if not spec.rate_eps:
                unsent_probes.extend(mine)
        else:
            if spec.rate_eps and mine and probes is not None:
                probes.put((CANCEL, [event_id for _, event_id in mine]))
            if not spec.rate_eps:
                time.sleep(0.05)  # refused or broken: do not spin against a failing server
        if unsent_probes and probes is not None and out["last_done"] - last_flush >= 0.2:
            probes.put((PROBE, unsent_probes))
            unsent_probes = []
            last_flush = out["last_done"]
    if unsent_probes and probes is not None:
        probes.put((PROBE, unsent_probes))
    with contextlib.suppress(OSError):
        poster.conn.close()
    out["pid"] = os.getpid()
    return out


def _sleep_until(when: float) -> None:
    while True:
        delay = when - time.monotonic()
        if delay <= 0:
            return
        time.sleep(min(delay, 0.5))

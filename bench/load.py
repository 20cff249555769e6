"""HTTP load for ingest, from separate processes: batched or single-event POSTs, max speed or a fixed rate.

`procs` processes each run `conns` threads, and each thread holds one keep-alive HTTP/1.1 connection
(`Poster`, reopened if the server closes it) posting JSON bodies built from a template, so the
generator spends little CPU per event on a machine it shares with the pipeline. Every event carries a
client-side `event_id` and the run's unique `type`, so its row can be found. `procs * conns` is the
number of requests in flight at most: ingest answers only after Kafka acknowledged, so a closed loop
over too few connections measures the client, not ingest.

At a fixed rate the schedule is open loop: request i of the whole run is due at
`t0 + i * batch / rate` (connection c takes requests c, c + n, c + 2n, ...), whatever the responses
do, and each probe's send time is that due time: a slow response delays later sends but not their
recorded send time, so a stall shows up as latency instead of silently lowering the offered rate.
At max speed each connection posts back to back. Both are bounded by an event count and a
deadline, and stop by themselves.

Every `probe_every`-th event is a probe: its id and send time go to the probe queue for
`bench.observe.ProbeWatcher`. At a fixed rate a probe is registered before its POST and withdrawn
if the POST fails; at max speed probes are registered after the 202, in small batches.

Times are `time.monotonic()`, which on Linux is one clock for every process on the machine.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import queue
import socket
import threading
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
    conns: int = 1  # connections (threads) per process

    @property
    def connections(self) -> int:
        return self.procs * self.conns

    def __post_init__(self) -> None:
        if min(self.batch_size, self.procs, self.conns, self.max_events) < 1 or self.max_seconds <= 0:
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
    cpu_s: float = 0.0  # CPU the load processes used from the start on, all of them together

    @property
    def duration_s(self) -> float:
        if self.first_send is None or self.last_done is None:
            return 0.0
        return max(self.last_done - self.first_send, 1e-9)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["first_send"], out["last_done"]  # monotonic clock readings: meaningless elsewhere
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
        finished = 0
        cpu_s = 0.0
        hard_deadline = start_at.value + spec.max_seconds + 120.0
        while finished < spec.procs:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > hard_deadline or not any(w.is_alive() for w in workers):
                    raise RuntimeError(f"{spec.procs - finished} load process(es) died or hung") from None
                continue
            if kind == "done":
                partials.extend(payload["outs"])
                cpu_s += payload["cpu_s"]
                finished += 1
            elif kind == "error":
                raise RuntimeError(f"load process failed: {payload}")
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    result = merge_results(partials)
    result.cpu_s = round(cpu_s, 2)
    return result


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


class HttpError(OSError):
    """The server's answer was not HTTP/1.x we can read; the connection is dropped."""


class _NoResponse(HttpError):
    """The server closed the connection without answering (e.g. its keep-alive timeout ran out)."""


class Poster:
    """One keep-alive HTTP/1.1 connection to ingest, reopened when the server closes it.

    A minimal client over a socket: http.client parses every header through the email package,
    which at a few thousand requests a second costs the pipeline a good part of a core on a
    2-core machine. Ingest answers with Content-Length (never chunked), which is all this reads.

    A connection idle for longer than `idle_s` is replaced before use (nginx closes idle
    keep-alive connections after its `keepalive_timeout`, 30 s here), and a request that a reused
    connection lost before any answer is sent once more on a new one: the server never saw it.
    """

    def __init__(self, url: str, timeout_s: float = 60.0, idle_s: float = 2.0) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        path = (parts.path.rstrip("/") or "") + "/events"
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self.sock: socket.socket | None = None
        self._last_used = 0.0

    def post(self, body: bytes) -> int:
        """The HTTP status. Raises OSError (HttpError included) when the connection broke."""
        request = self._head + str(len(body)).encode() + b"\r\n\r\n" + body
        if self.sock is not None and time.monotonic() - self._last_used > self.idle_s:
            self.close()
        reused = self.sock is not None
        try:
            status, keep = self._exchange(request)
        except (_NoResponse, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            try:
                status, keep = self._exchange(request)
            except OSError:
                self.close()
                raise
        except OSError:
            self.close()
            raise
        self._last_used = time.monotonic()
        if not keep:
            self.close()
        return status

    def _exchange(self, request: bytes) -> tuple[int, bool]:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout_s)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(request)
        return self._read_response(self.sock)

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    @staticmethod
    def _read_response(sock: socket.socket) -> tuple[int, bool]:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                if not buffer:
                    raise _NoResponse("connection closed without a response")
                raise HttpError("connection closed inside the response headers")
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(f"not an HTTP status line: {lines[0][:80]!r}") from None
        length = None
        keep = lines[0].startswith(b"HTTP/1.1")
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                token = value.strip().lower()
                if token == b"close":
                    keep = False
                elif token == b"keep-alive":
                    keep = True
            elif name == b"transfer-encoding":
                raise HttpError("chunked responses are not read by this client")
        if length is None:
            raise HttpError("response without Content-Length")
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise HttpError("connection closed inside the response body")
            rest += chunk
        return status, keep


class _Bodies:
    """Request bodies from a template: a unique event_id per event, 64 sessions per connection."""

    def __init__(self, event_type: str, conn: int) -> None:
        self.prefix = (
            '{"type":"' + event_type + '","server":"bench-mcp","method":"tools/call","tool":"search",'
            '"status":"ok","duration_ms":12.5,"attributes":{"client":"bench","conn":' + str(conn) + ',"seq":'
        )
        self.conn = conn
        self.seq = 0

    def build(self, count: int) -> tuple[bytes, list[str]]:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        ids = [str(uuid.uuid4()) for _ in range(count)]
        parts = []
        for event_id in ids:
            self.seq += 1
            parts.append(
                f'{self.prefix}{self.seq}}},"event_id":"{event_id}","timestamp":"{stamp}",'
                f'"session_id":"bench-{self.conn}-{self.seq % 64}"}}'
            )
        body = parts[0] if count == 1 else "[" + ",".join(parts) + "]"
        return body.encode(), ids


def _worker(spec: LoadSpec, index: int, probes: Any, results: Any, go: Any, start_at: Any) -> None:
    try:
        results.put(("ready", index))
        go.wait(60)
        _sleep_until(start_at.value)
        # From the start on: the interpreter's start-up and imports happen before the measured
        # window, and the compiled generator (bench/native_load.py) counts the same way.
        before = sum(os.times()[:2])
        outs: list[dict[str, Any]] = []
        failures: list[str] = []

        def connection(conn: int) -> None:
            try:
                outs.append(_drive(spec, conn, probes, start_at.value))
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(f"{type(exc).__name__}: {exc}")

        threads = [
            threading.Thread(target=connection, args=(index * spec.conns + c,), daemon=True) for c in range(spec.conns)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cpu_s = sum(os.times()[:2]) - before
        results.put(("error", failures[0]) if failures else ("done", {"outs": outs, "cpu_s": cpu_s}))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _drive(spec: LoadSpec, conn: int, probes: Any, t0: float) -> dict[str, Any]:
    """One connection's share of the load; `conn` is its index among all connections of the run."""
    poster = Poster(spec.url)
    bodies = _Bodies(spec.event_type, conn)
    my_events = -(-spec.max_events // spec.connections)
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
            due = t0 + (conn + request_no * spec.connections) * interval
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
        except OSError:
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
    poster.close()
    out["pid"] = os.getpid()
    return out


def _sleep_until(when: float) -> None:
    while True:
        delay = when - time.monotonic()
        if delay <= 0:
            return
        time.sleep(min(delay, 0.5))

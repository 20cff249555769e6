"""The load generators against a local HTTP/1.1 server: every event is posted once and counted once,
across keep-alive connections the server closes, answers it drops, and a fixed-rate schedule. The
max-speed cases run against both the Python generator and the compiled one (bench/loadgen)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import CANCEL, PROBE, LoadResult, LoadSpec, _Bodies, probe_queue, run_load
from bench.native_load import run_native_load

MAX_SPEED_GENERATORS = pytest.mark.parametrize("run", [run_load, run_native_load], ids=["python", "native"])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, close_every: int, drop_third: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.close_every = close_every  # answer with Connection: close every n-th request
        self.drop_third = drop_third  # close the connection unanswered at its third request, once
        self.lock = threading.Lock()
        self.event_ids: list[str] = []
        self.events: list[dict] = []
        self.requests = 0
        self.dropped = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.on_this_connection = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.on_this_connection += 1
        with self.server.lock:
            if self.server.drop_third and self.on_this_connection == 3 and not self.server.dropped:
                self.server.dropped += 1
                self.close_connection = True
                return  # no answer: the client must send it again on a new connection
            parsed = json.loads(body)
            events = parsed if isinstance(parsed, list) else [parsed]
            self.server.event_ids.extend(e["event_id"] for e in events)
            self.server.events.extend(events)
            self.server.requests += 1
            close = self.server.requests % self.server.close_every == 0
        payload = json.dumps({"accepted": len(events)}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def _serve(close_every: int = 1_000_000, drop_third: bool = False) -> Iterator[_Server]:
    server = _Server(close_every, drop_third)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    with _serve(close_every=7, drop_third=True) as served:
        yield served


def _drain(probes: object) -> tuple[list[str], list[str]]:
    registered: list[str] = []
    cancelled: list[str] = []
    while not probes.empty():  # type: ignore[attr-defined]
        kind, payload = probes.get(timeout=1)  # type: ignore[attr-defined]
        if kind == PROBE:
            registered.extend(event_id for _, event_id in payload)
        elif kind == CANCEL:
            cancelled.extend(payload)
    return registered, cancelled


@MAX_SPEED_GENERATORS
def test_max_speed_posts_every_event_once_across_closed_and_dropped_connections(
    server: _Server, run: Callable[..., LoadResult]
) -> None:
    host, port = server.server_address[:2]
    spec = LoadSpec(
        url=f"http://{host}:{port}",
        event_type="load-test",
        batch_size=3,
        procs=2,
        conns=3,
        max_events=600,
        max_seconds=30,
        probe_every=10,
    )
    probes = probe_queue()
    result = run(spec, probes)

    # 600 events over 6 connections of 100 each, in posts of 3 (the last post of each holds 1).
    assert result.events_accepted == result.events_sent == 600
    assert result.requests == 6 * 34
    assert result.statuses == {"202": 6 * 34}
    assert result.connection_errors == 0
    assert server.dropped == 1  # the dropped request was sent again, and counted once
    assert len(server.event_ids) == len(set(server.event_ids)) == 600
    registered, cancelled = _drain(probes)
    assert cancelled == []
    assert set(registered) <= set(server.event_ids)
    assert len(registered) == 6 * 10  # every 10th of each connection's 100 events
    # Both generators post the same event, field for field, with a session per 64 events of a
    # connection, and a sequence number that counts each connection's events.
    template = json.loads(_Bodies("load-test", 0).build(1)[0])
    assert all(event.keys() == template.keys() and event["type"] == "load-test" for event in server.events)
    assert {event["attributes"]["conn"] for event in server.events} == set(range(6))
    assert sorted(event["attributes"]["seq"] for event in server.events if event["attributes"]["conn"] == 5) == list(
        range(1, 101)
    )
    assert all(
        event["session_id"]
        == "bench-{conn}-{seq}".format(conn=event["attributes"]["conn"], seq=event["attributes"]["seq"] % 64)
        for event in server.events
    )
    assert all(event["timestamp"].endswith("Z") and len(event["timestamp"]) == 27 for event in server.events)


def test_fixed_rate_offers_the_schedule_and_registers_probes_before_posting() -> None:
    with _serve(close_every=5) as served:
        host, port = served.server_address[:2]
        spec = LoadSpec(
            url=f"http://{host}:{port}",
            event_type="load-rate",
            batch_size=2,
            procs=1,
            conns=2,
            max_events=10_000,
            max_seconds=1.0,
            rate_eps=200.0,
            probe_every=4,
        )
        probes = probe_queue()
        result = run_load(spec, probes)
        # 200 events/s in posts of 2 for 1 s: requests due at 0, 10 ms, ..., 990 ms.
        assert result.requests == 100
        assert result.events_accepted == 200
        assert result.connection_errors == 0
        assert len(served.event_ids) == 200
        registered, cancelled = _drain(probes)
        assert cancelled == []
        assert len(registered) == 50
        assert set(registered) <= set(served.event_ids)


@MAX_SPEED_GENERATORS
def test_a_refused_connection_counts_as_an_error_not_an_accepted_event(run: Callable[..., LoadResult]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once this socket closes
    spec = LoadSpec(
        url=f"http://127.0.0.1:{port}",
        event_type="load-refused",
        batch_size=1,
        procs=1,
        conns=2,
        max_events=4,
        max_seconds=0.5,
    )
    result = run(spec, None)
    assert result.events_accepted == 0
    assert result.connection_errors == result.requests > 0
    assert result.statuses == {"0": result.requests}


def test_the_compiled_generator_refuses_a_fixed_rate() -> None:
    spec = LoadSpec(
        url="http://127.0.0.1:9", event_type="x", batch_size=1, procs=1, max_events=1, max_seconds=1, rate_eps=10.0
    )
    with pytest.raises(ValueError, match="max speed only"):
        run_native_load(spec, None)


def test_the_compiled_generator_reports_why_it_did_not_start() -> None:
    spec = LoadSpec(url="ftp://127.0.0.1:9", event_type="x", batch_size=1, procs=1, max_events=1, max_seconds=1)
    with pytest.raises(RuntimeError, match=r"did not start.*not an http:// URL"):
        run_native_load(spec, None)

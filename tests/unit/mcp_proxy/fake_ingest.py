"""A real HTTP server in the test's process that answers POST /events as the test says: for the
answers the running ingest cannot be made to give on demand (503 with Retry-After, 413, 401)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

# (events of the request) -> (status, JSON payload, extra headers)
Responder = Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any], dict[str, str]]]


def accept_all(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 202, {"accepted": len(events), "event_ids": [e.get("event_id") for e in events]}, {}


@dataclass
class FakeIngest:
    url: str
    responder: Responder
    requests: list[list[dict[str, Any]]] = field(default_factory=list)  # every POST's events, in order
    headers: list[dict[str, str]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # events answered 2xx, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted_ids(self) -> list[str]:
        with self.lock:
            return [event["event_id"] for event in self.accepted]


@contextmanager
def fake_ingest(responder: Responder = accept_all) -> Iterator[FakeIngest]:
    state = FakeIngest("", responder)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as ingest's nginx

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            events = [orjson.loads(line) for line in body.split(b"\n") if line.strip()]
            with state.lock:
                state.requests.append(events)
                state.headers.append(dict(self.headers))
            status, payload, extra = state.responder(events)
            if 200 <= status < 300:
                with state.lock:
                    state.accepted.extend(events)
            content = orjson.dumps(payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

"""Ingest on granian's event loop (RSGI): POST /events served on the loop, everything else by Flask
on a pool of threads.

Why: a WSGI server runs each request on a thread of its own. With one event per POST a request is
~100 us of Python around an ~8 ms wait for Kafka's acknowledgement, and every request crossed
threads five times (granian's runtime to a Python thread, the GIL, the wait, the report thread's
wake-up, back): the kernel's context switches were a third of a worker's profile samples. Here
the loop runs every POST /events of the process in one thread, the wait is a future,
and the report thread wakes the loop once per poll for every request it finished
(`publisher.publish_async`). Single events at 100% sampling: granian alone spent 364-443 against
508-605 us of CPU per request; in the pipeline, 1,976 against 1,778 events/s on average over 7
alternating pairs.

The work is `accept.accept_events_async`, the same steps the WSGI endpoint and the Flask view run.
The request is read as a WSGI environ built as granian's WSGI interface builds it (`wsgi_environ`),
so the server span's attributes, Werkzeug's body limits and Flask's error handlers see what they
saw behind the WSGI server. The rare answers stay Flask's own, as in `events_endpoint`: a 413 over
MAX_CONTENT_LENGTH, a 400 for a body cut short, a JSON 500 for an unhandled exception. Everything
else (the operator endpoints, 404s and 405s, and every request when the OTel Flask instrumentation
records the server span) is Flask's WSGI app, called on `threads` threads so that a slow readiness
check never holds the loop.

A request's CPU work holds the loop, so a large batch's parsing, checks and produce calls (~3 us per
event each) run on a thread instead (`accept.OFFLOAD_BYTES`, `publisher.OFFLOAD_MESSAGES`). Beside a
client posting 10,000-event batches, single events waited 577 ms at p99 with them on the loop, 134
with them on a thread, and 120 behind the WSGI server.
"""

from __future__ import annotations

import asyncio
import functools
import io
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length

from ingest_app import server_span
from ingest_app.accept import accept_events_async
from ingest_app.events_endpoint import EVENTS_PATH, JsonAnswer, by_flask
from ingest_app.publisher import APP_EXTENSION

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment
    from granian.rsgi import HTTPProtocol, Scope

# Response headers granian's RSGI takes: a list of (name, value).
Headers = list[tuple[str, str]]


class IngestApp:
    """granian's RSGI app for the Flask ingest app `flask_app` (`ingest_app.rsgi`)."""

    def __init__(self, flask_app: Flask, threads: int) -> None:
        self._app = flask_app
        # POST /events is the endpoint's unless the OTel Flask instrumentation records the span, as
        # with the WSGI server (ingest_app.init_app).
        self._serves_events = flask_app.config["SENTINEL_SERVER_SPAN"] == server_span.HOOKS
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="flask")

    def __rsgi_del__(self, _loop: asyncio.AbstractEventLoop) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if scope.proto != "http":
            return  # granian runs without websockets (--no-ws); nothing else reaches an app
        if self._serves_events and scope.path == EVENTS_PATH and scope.method == "POST":
            await self._post_events(scope, proto)
            return
        environ = wsgi_environ(scope, await proto())
        loop = asyncio.get_running_loop()
        status, headers, body = await loop.run_in_executor(self._threads, call_wsgi, self._app, environ)
        proto.response_bytes(status, headers, body)

    async def _post_events(self, scope: Scope, proto: HTTPProtocol) -> None:
        environ = wsgi_environ(scope, b"")
        started = server_span.start_server_span(environ, EVENTS_PATH)
        unhandled: BaseException | None = None
        try:
            try:
                answer = await self._answer(environ, proto)
            except Exception as exc:  # noqa: BLE001 - answered as Flask answers any unhandled exception
                unhandled = exc
                # Logged, then a JSON 500 from the app's error handler (or raised again in testing).
                answer = by_flask(self._app, environ, self._app.handle_exception, exc)
            server_span.record_status(started[0], answer.status_code)
        finally:
            server_span.end_server_span(started, unhandled)
        if isinstance(answer, JsonAnswer):
            headers = [("content-type", "application/json"), *answer.headers.items()]
            proto.response_bytes(answer.status_code, headers, answer.body)
        else:
            proto.response_bytes(*call_wsgi(answer, environ))

    async def _answer(self, environ: WSGIEnvironment, proto: HTTPProtocol) -> JsonAnswer | WSGIApplication:
        app = self._app
        limit = app.config["MAX_CONTENT_LENGTH"]
        content_length = get_content_length(environ)

        async def body() -> bytes:
            # What Werkzeug's get_input_stream(environ, max_content_length=limit).read() gives
            # (as events_endpoint reads it), without its stream wrappers: ~20 us less per request.
            if content_length is None:  # streamed: cut at the limit without an error
                received = await _receive_streamed(proto, limit)
                return received if limit is None else received[:limit]
            if limit is not None and content_length > limit:
                raise RequestEntityTooLarge()  # before reading
            received = await proto()
            if len(received) < content_length:
                raise ClientDisconnected()  # granian's HTTP/1 never passes a short body on
            return received if len(received) == content_length else received[:content_length]

        try:
            status, payload, headers = await accept_events_async(
                environ.get("HTTP_AUTHORIZATION"),
                body,
                content_length,
                environ.get("CONTENT_TYPE"),
                app.config,
                app.extensions[APP_EXTENSION],
            )
        except HTTPException as exc:  # raised while reading the body: 413, or 400 for a body cut short
            return by_flask(app, environ, app.handle_http_exception, exc)
        return JsonAnswer(status, orjson.dumps(payload), headers)


async def _receive_streamed(proto: HTTPProtocol, limit: int | None) -> bytes:
    """A streamed (chunked) body, only up to `limit`: Werkzeug reads no further either."""
    parts: list[bytes] = []
    size = 0
    async for part in proto:
        parts.append(part)
        size += len(part)
        if limit is not None and size >= limit:
            break
    return b"".join(parts)


# The keys granian's WSGI environ has for every request, the same each time.
_CONSTANT_ENVIRON: dict[str, Any] = {
    "SCRIPT_NAME": "",
    "SERVER_SOFTWARE": "Granian",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "wsgi.version": (1, 0),
    "wsgi.input_terminated": True,
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ granian's WSGI interface gives for the request in `scope` (the keys a WSGI
    app reads; granian also copies the process's environment in)."""
    server_name, server_port = _host_port(scope.server)
    environ = _CONSTANT_ENVIRON.copy()
    environ["REQUEST_METHOD"] = scope.method
    # WSGI's PATH_INFO is the decoded path's bytes as latin-1; granian's RSGI path is those bytes
    # read as UTF-8. Encoding it back gives WSGI's exactly for any UTF-8 path. A byte that is not
    # UTF-8 (`%ff`) reached RSGI as U+FFFD already, which Werkzeug makes of it anyway.
    path = scope.path
    environ["PATH_INFO"] = path if path.isascii() else path.encode().decode("latin-1")
    environ["QUERY_STRING"] = scope.query_string
    environ["SERVER_NAME"] = server_name
    environ["SERVER_PORT"] = server_port
    environ["SERVER_PROTOCOL"] = f"HTTP/{scope.http_version}"
    environ["REMOTE_ADDR"] = _host_port(scope.client)[0] if scope.client else ""
    environ["wsgi.url_scheme"] = scope.scheme
    environ["wsgi.input"] = io.BytesIO(body)
    for name, value in scope.headers.items():
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        # A repeated header is one value, joined with commas, as granian's WSGI joins it.
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


@functools.lru_cache(maxsize=64)  # the server's address is the same for every request
def _host_port(address: str) -> tuple[str, str]:
    """("host", "port") of granian's "host:port", or (path, "0") for a Unix socket's path."""
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit():
        return host, port
    return address, "0"


def call_wsgi(app: WSGIApplication, environ: WSGIEnvironment) -> tuple[int, Headers, bytes]:
    """Status, headers and body of WSGI app `app`'s whole answer to `environ`."""
    started: list[Any] = []

    def start_response(status: str, headers: Headers, exc_info: object = None) -> None:
        started[:] = [status, headers]

    chunks: Iterable[bytes] = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = started
    return int(status.split(" ", 1)[0]), list(headers), body

"""POST /events answered in front of Flask's request handling, behind granian's WSGI interface
(SENTINEL_INGEST_INTERFACE=wsgi; by default `rsgi_app` answers it on an event loop, with the
`JsonAnswer` and `by_flask` here); every other request goes on to Flask.

Why: with one event per POST, Flask's per-request machinery (request and app contexts, URL
adapter, hooks, signals, the response object) cost more than the work it wraps. Called directly
in one thread, a single-event POST took 111-128 us untraced through Flask's view and 28-31 here;
recording spans, 136-171 against 40-60. In the pipeline at 100% sampling, ingest's CPU per event
fell by about a quarter.

The work is `accept.accept_events`, the same function the Flask view calls, given what Flask's
Request would give it (read from the environ as Werkzeug reads it); the server span is
`server_span`'s. The rare answers stay Flask's own: an HTTP error raised while reading the body
(413 over MAX_CONTENT_LENGTH, 400 for a body cut short) goes to the app's error handlers, and an
unhandled exception to `Flask.handle_exception` (logged, a JSON 500, or raised in testing), each
inside a request context. Only POST to exactly `/events` is answered here: other methods (405),
other paths and the operator endpoints are Flask's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import orjson
from flask import Flask, Response
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length, get_input_stream

from ingest_app import server_span
from ingest_app.accept import Incoming, accept_events
from ingest_app.publisher import APP_EXTENSION

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The route this answers; the Flask view of the same route (routes.py) is registered with it too.
EVENTS_PATH = "/events"
E = TypeVar("E", bound=Exception)


def _read_body(environ: WSGIEnvironment, limit: int | None) -> bytes:
    return get_input_stream(environ, max_content_length=limit).read()


class JsonAnswer(NamedTuple):
    """A WSGI response with a JSON body, written as Werkzeug's Response writes it."""

    status_code: int
    body: bytes
    headers: Mapping[str, str]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status = f"{self.status_code} {HTTP_STATUS_CODES.get(self.status_code, 'UNKNOWN').upper()}"
        content = [("Content-Type", "application/json"), ("Content-Length", str(len(self.body)))]
        start_response(status, [*content, *self.headers.items()])
        return [self.body]


class EventsEndpoint:
    """WSGI middleware for a Flask app: `app.wsgi_app = EventsEndpoint(app, app.wsgi_app)`."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self._app = app
        self._wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != EVENTS_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self._wsgi_app(environ, start_response)
        started = server_span.start_server_span(environ, EVENTS_PATH)
        unhandled: BaseException | None = None
        try:
            try:
                response = self._answer(environ)
            except Exception as exc:  # noqa: BLE001 - answered as Flask answers any unhandled exception
                unhandled = exc
                # Logged, then a JSON 500 from the app's error handler (or raised again in testing).
                response = by_flask(self._app, environ, self._app.handle_exception, exc)
            server_span.record_status(started[0], response.status_code)
        finally:
            server_span.end_server_span(started, unhandled)
        # As in Flask.wsgi_app, the server's start_response is called outside the app's error
        # handling: what it raises is the server's, not a 500 of the app.
        return response(environ, start_response)

    def _answer(self, environ: WSGIEnvironment) -> JsonAnswer | Response:
        app = self._app
        # What Flask's Request would read, straight from the environ: its headers are these keys,
        # and its get_data reads this stream (get_input_stream with MAX_CONTENT_LENGTH).
        request = Incoming(
            environ.get("HTTP_AUTHORIZATION"),
            environ.get("CONTENT_TYPE"),
            get_content_length(environ),
            partial(_read_body, environ, app.config["MAX_CONTENT_LENGTH"]),
        )
        try:
            status, payload, headers = accept_events(request, app.config, app.extensions[APP_EXTENSION])
        except HTTPException as exc:  # raised while reading the body: 413, or 400 for a body cut short
            return by_flask(app, environ, app.handle_http_exception, exc)
        return JsonAnswer(status, orjson.dumps(payload), headers)


def by_flask(app: Flask, environ: WSGIEnvironment, handle: Callable[[E], ResponseReturnValue], exc: E) -> Response:
    """The response `handle(exc)`, Flask's own handling, gives, inside a request context as its
    handlers expect."""
    with app.request_context(environ):
        return app.make_response(handle(exc))

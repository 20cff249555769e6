"""Ingest's SERVER span (`POST /events`): started and ended here, by `events_endpoint` for
POST /events and by three Flask hooks for every other traced request.

The same span the OTel Flask instrumentation records, at a fraction of its cost: the same name
(`{method} {route}`), kind, parent (the caller's W3C context, read with the global propagator),
attribute keys and values (the HTTP conventions the instrumentation records by default), status
(ERROR on 5xx and on an unhandled exception, which is recorded as an event), and it is the current
span while the view runs, so `send mcp.events` is its child.

Why not the instrumentation: per request it builds the full URL twice for its exclusion check,
collects the request attributes twice (once for metrics nobody reads here: no MeterProvider is
set), reads its header-capture settings from the environment, attaches a second context for
sqlcommenter and wraps start_response. With one event per POST, measured on this machine: 459 ->
309 us per request with tracing off and 677-697 -> 471-481 at 100% sampling (the app alone), and
808-848 -> 647-665 behind granian with Kafka under load.
`SENTINEL_INGEST_SERVER_SPAN=flask-instrumentation` puts the instrumentation back.

Differences, both deliberate: a request that matches no route is named `{method}` alone (the HTTP
conventions' low-cardinality name; the instrumentation used the raw path), and a request Flask
serves starts its span once Flask has matched the route, not when the server handed it over.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from flask import Flask, Response, request
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ingest_app.request_uri import request_target
from sentinel import semconv
from sentinel.telemetry import tracer

# Who may record the span (SENTINEL_INGEST_SERVER_SPAN): these hooks, or the OTel Flask instrumentation.
HOOKS, FLASK_INSTRUMENTATION = "hooks", "flask-instrumentation"
RECORDERS = (HOOKS, FLASK_INSTRUMENTATION)

# Probes and scrapes: operators poll them every few seconds; a trace each would only be noise.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_SPAN_KEY = "sentinel.server_span"
# A started server span and the token that detaches it (the hooks keep it in the environ).
Started = tuple[Span, Token[Context]]


def init_app(app: Flask) -> None:
    """Record a SERVER span for every request of `app` except those to UNTRACED_PATHS."""
    app.before_request(_start)
    app.after_request(_record_status)
    app.teardown_request(_end)


def request_attributes(environ: dict[str, Any], route: str | None) -> dict[str, Any]:
    """The attributes the OTel Flask instrumentation records by default, from the environ."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    attributes: dict[str, Any] = {
        semconv.HTTP_METHOD: environ.get("REQUEST_METHOD", ""),
        semconv.HTTP_SERVER_NAME: environ.get("SERVER_NAME", ""),
        semconv.HTTP_SCHEME: environ.get("wsgi.url_scheme", "http"),
        semconv.NET_HOST_NAME: host,
        semconv.HTTP_HOST: host,
        semconv.HTTP_TARGET: environ.get("RAW_URI") or environ.get("REQUEST_URI") or request_target(environ),
        semconv.NET_PEER_IP: environ.get("REMOTE_ADDR", ""),
        semconv.HTTP_FLAVOR: environ.get("SERVER_PROTOCOL", "").rpartition("/")[2],
    }
    port = environ.get("SERVER_PORT")
    if port and port.isdigit():
        attributes[semconv.NET_HOST_PORT] = int(port)
    peer_port = environ.get("REMOTE_PORT")
    if peer_port and str(peer_port).isdigit():
        attributes[semconv.NET_PEER_PORT] = int(peer_port)
    user_agent = environ.get("HTTP_USER_AGENT")
    if user_agent:
        attributes[semconv.HTTP_USER_AGENT] = user_agent
    if route is not None:
        attributes[semconv.HTTP_ROUTE] = route
    return attributes


def start_server_span(environ: dict[str, Any], route: str | None) -> Started:
    """Start the SERVER span of the request in `environ`, matched to `route` (None: no route),
    as the caller's child, and make it current; `end_server_span` ends it and restores the context."""
    # The WSGI instrumentation's getter: reads `traceparent` etc. from HTTP_* keys, nothing else.
    parent = propagate.extract(environ, getter=wsgi_getter)
    method = environ.get("REQUEST_METHOD", "")
    span = tracer().start_span(
        f"{method} {route}" if route else method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes=request_attributes(environ, route),
    )
    return span, context.attach(trace.set_span_in_context(span, parent))


def record_status(span: Span, status_code: int) -> None:
    """The response's status on the span; a 5xx marks it failed (a 4xx is the client's error)."""
    span.set_attribute(semconv.HTTP_STATUS_CODE, status_code)
    if status_code >= 500:
        span.set_status(Status(StatusCode.ERROR))


def end_server_span(started: Started, exc: BaseException | None) -> None:
    """End the span (recording `exc`, the request's unhandled exception, if any) and detach it."""
    span, token = started
    if exc is not None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.end()
    context.detach(token)


def _start() -> None:
    environ = request.environ
    if environ.get("PATH_INFO") in UNTRACED_PATHS:
        return
    rule = request.url_rule
    environ[_SPAN_KEY] = start_server_span(environ, rule.rule if rule is not None else None)


def _record_status(response: Response) -> Response:
    started: Started | None = request.environ.get(_SPAN_KEY)
    if started is not None:
        record_status(started[0], response.status_code)
    return response


def _end(exc: BaseException | None) -> None:
    started: Started | None = request.environ.pop(_SPAN_KEY, None)
    if started is not None:
        end_server_span(started, exc)

"""Spans of relayed MCP requests, per the OpenTelemetry semantic conventions for MCP.

A request is received by the proxy and sent on, so it gets two spans named
`{mcp.method.name} {target}`: a SERVER span for the side that received it, then a CLIENT span, its
child, for sending it on; the CLIENT span's context is what the receiver finds in `params._meta`.
That holds in both directions. A request from the client: SERVER (received from the client) ->
CLIENT (to the upstream). A server-initiated request (sampling, elicitation, roots, ping): SERVER
(received from the upstream; the conventions have the receiving side of any request report the
server span) -> CLIENT (to the client; "reported by the MCP server when the server initiates the
operation").

Spans are started and ended explicitly, never made current: one relay task carries many calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from mcp_proxy.audit import SessionInfo
from sentinel import semconv
from sentinel.propagation import traceparent_of
from sentinel.telemetry import tracer

ROOT = Context()  # the parent of a span that starts a trace


@dataclass(slots=True)
class CallSpans:
    server: trace.Span
    client: trace.Span


def parent_context(meta: Mapping[str, Any] | None, headers: Mapping[str, str] | None = None) -> Context:
    """The context a received request continues: its `params._meta` (W3C keys), else the HTTP
    request that carried it, else none (a new trace)."""
    for carrier in (meta, headers):
        if not carrier:
            continue
        try:
            context = propagate.extract(carrier)
        except (TypeError, ValueError):
            continue
        if trace.get_current_span(context).get_span_context().is_valid:
            return context
    return ROOT


def start(
    method: str,
    target: str | None,
    request_id: Any,
    session: SessionInfo,
    parent: Context,
    params: Mapping[str, Any] | None,
) -> CallSpans:
    """Start the SERVER span (child of `parent`) and the CLIENT span (child of the SERVER span)."""
    attributes: dict[str, Any] = {
        semconv.MCP_METHOD_NAME: method,
        semconv.MCP_SESSION_ID: session.session_id,
        semconv.JSONRPC_REQUEST_ID: str(request_id),
        semconv.NETWORK_TRANSPORT: "pipe" if session.transport == "stdio" else "tcp",
    }
    if session.protocol_version:
        attributes[semconv.MCP_PROTOCOL_VERSION] = session.protocol_version
    if method == "tools/call" and target:
        attributes[semconv.GEN_AI_TOOL_NAME] = target
        attributes[semconv.GEN_AI_OPERATION_NAME] = semconv.GEN_AI_OPERATION_EXECUTE_TOOL
    elif method == "prompts/get" and target:
        attributes[semconv.GEN_AI_PROMPT_NAME] = target
    elif params and method.startswith("resources/") and isinstance(params.get("uri"), str):
        attributes[semconv.MCP_RESOURCE_URI] = params["uri"]
    # Resource URIs are high-cardinality: they stay out of span names.
    name = semconv.mcp_span_name(method, None if method.startswith("resources/") else target)
    t = tracer()
    server = t.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    client = t.start_span(name, context=trace.set_span_in_context(server), kind=SpanKind.CLIENT, attributes=attributes)
    return CallSpans(server, client)


def context_of(spans: CallSpans) -> Context:
    """A context whose current span is the CLIENT span: the parent of what the call causes."""
    return trace.set_span_in_context(spans.client)


def inject(spans: CallSpans) -> dict[str, str]:
    """The W3C keys that carry the CLIENT span's context ({} when there is nothing to carry)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context_of(spans))
    return carrier


def server_context(spans: CallSpans) -> tuple[str, str]:
    """The SERVER span's traceparent and tracestate: the audit event's own trace."""
    context = spans.server.get_span_context()
    return traceparent_of(context), context.trace_state.to_header() if context.trace_state else ""


def finish(spans: CallSpans, error_type: str | None = None, description: str | None = None) -> None:
    """End both spans; `error_type` marks a failed call (error.type and an ERROR status)."""
    for span in (spans.client, spans.server):
        if error_type is not None and span.is_recording():
            span.set_attribute(semconv.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, description))
        span.end()

"""Post audit events the way the MCP proxy does: through an instrumented HTTP client, so the
request has a client span and carries a traceparent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from opentelemetry import trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from sentinel import settings


@dataclass(frozen=True)
class Emitted:
    status: int
    event_ids: list[str]
    trace_id: str
    body: dict[str, Any]


def audit_event(
    *,
    event_type: str = "tool_call",
    tool: str = "search",
    server: str = "demo-mcp-server",
    session_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "session_id": session_id or f"session-{uuid.uuid4().hex[:8]}",
        "server": server,
        "method": "tools/call",
        "tool": tool,
        "status": "ok",
        "duration_ms": 12.5,
        "attributes": {"client": "sentinel emit"},
        **extra,
    }


def emit(
    events: list[dict[str, Any]], *, url: str = settings.INGEST_URL, token: str | None = None, timeout: float = 30.0
) -> Emitted:
    """POST the events; the requests instrumentation makes the client span and injects traceparent."""
    RequestsInstrumentor().instrument()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with trace.get_tracer("sentinel.emit").start_as_current_span("mcp-proxy emit audit events") as span:
        response = requests.post(
            f"{url.rstrip('/')}/events", json=events if len(events) > 1 else events[0], headers=headers, timeout=timeout
        )
        context = span.get_span_context()
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text}
    return Emitted(response.status_code, body.get("event_ids", []), f"{context.trace_id:032x}", body)

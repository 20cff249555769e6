"""Audit events: what one MCP request/response pair (or audited notification) becomes.

Plain functions over plain values, no I/O: the relay records a `CallRecord` when a request passes
and calls `request_event` once its outcome is known. Field names follow the audit-event contract
(DESIGN.md); everything MCP-specific beyond the contract's fields sits under `attributes`, with
the keys below. Events stay inside what ingest accepts: strings of the typed fields are cut to
its length limit, captured values are bounded (sentinel.events).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from mcp_proxy import masking
from sentinel import events

# -- event types and statuses (the contract's values) ----------------------------------------------
TYPE_TOOL_CALL = "tool_call"
TYPE_REQUEST = "mcp.request"
TYPE_NOTIFICATION = "mcp.notification"
STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUS_TOOL_ERROR = "tool_error"
STATUS_CANCELLED = "cancelled"
STATUS_FAILED = "failed"

CLIENT_TO_SERVER = "client->server"
SERVER_TO_CLIENT = "server->client"

# -- attribute keys --------------------------------------------------------------------------------
ATTR_REQUEST_ID = "jsonrpc_request_id"
ATTR_DIRECTION = "direction"
ATTR_PROTOCOL_VERSION = "protocol_version"
ATTR_CLIENT_NAME = "client_name"
ATTR_CLIENT_VERSION = "client_version"
ATTR_TRANSPORT = "transport"
ATTR_REQUEST_BYTES = "request_bytes"
ATTR_RESPONSE_BYTES = "response_bytes"
ATTR_ARGUMENTS = "arguments"
ATTR_ARGUMENTS_TRUNCATED = "arguments_truncated"
ATTR_RESULT = "result"
ATTR_RESULT_TRUNCATED = "result_truncated"
ATTR_IS_ERROR = "is_error"
ATTR_ERROR_CODE = "error_code"
ATTR_ERROR_MESSAGE = "error_message"
ATTR_CANCEL_REASON = "cancel_reason"
ATTR_CANCELLED_REQUEST_ID = "cancelled_request_id"

CaptureMode = Literal["none", "masked", "full"]
CAPTURE_MODES: tuple[CaptureMode, ...] = ("none", "masked", "full")

_AUDITED_NOTIFICATIONS = frozenset({"notifications/initialized", "notifications/cancelled"})
# The method's parameter that names its target (gen_ai.tool.name, gen_ai.prompt.name or the URI).
_TARGET_PARAM = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "resources/subscribe": "uri",
    "resources/unsubscribe": "uri",
}
_MAX_ERROR_MESSAGE = 1024


@dataclass(frozen=True)
class CapturePolicy:
    arguments: CaptureMode = "masked"
    results: bool = False
    max_bytes: int = 16 * 1024


@dataclass
class SessionInfo:
    """What every event of one MCP session shares; filled in as `initialize` passes."""

    server: str
    session_id: str
    transport: str  # "stdio" or "http"
    principal: str | None = None
    protocol_version: str | None = None
    client_name: str | None = None
    client_version: str | None = None


@dataclass(slots=True)
class CallRecord:
    """One request in flight, as captured when it passed the proxy."""

    request_id: Any
    method: str
    target: str | None
    direction: str
    started_at: float  # time.time() at the request
    started: float  # time.monotonic() at the request
    request_bytes: int
    arguments: Any = None
    arguments_truncated: bool = False
    traceparent: str = ""
    tracestate: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    response_bytes: int = 0
    is_error: bool | None = None
    error_code: int | None = None
    error_message: str | None = None
    result: Any = None
    result_truncated: bool = False
    cancel_reason: str | None = None


def event_type(method: str) -> str:
    return TYPE_TOOL_CALL if method == "tools/call" else TYPE_REQUEST


def audited_notification(method: str) -> bool:
    """initialized, cancelled and every */list_changed are audited; progress and log traffic is not."""
    return method in _AUDITED_NOTIFICATIONS or (method.startswith("notifications/") and method.endswith("list_changed"))


def target_of(method: str, params: dict[str, Any] | None) -> str | None:
    """The tool name, prompt name or resource URI a request is about, if it has one."""
    key = _TARGET_PARAM.get(method)
    if key is None or not params:
        return None
    value = params.get(key)
    return value if isinstance(value, str) else None


def principal_for_token(token: str) -> str:
    """A stable, non-reversible id for a bearer token: the same caller, never the token itself."""
    return "token:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def capture(value: Any, mode: CaptureMode, max_bytes: int) -> tuple[Any, bool]:
    """`value` as the policy keeps it, and whether it was cut: under `max_bytes` of JSON it stays
    a value; longer, it becomes its JSON text cut to `max_bytes`."""
    if mode == "none" or value is None:
        return None, False
    kept = masking.mask(value) if mode == "masked" else masking.bounded(value)
    text = orjson.dumps(kept)
    if len(text) <= max_bytes:
        return kept, False
    return text[:max_bytes].decode("utf-8", errors="ignore"), True


def request_arguments(method: str, params: dict[str, Any] | None) -> Any:
    """What counts as a request's arguments: `arguments` of a tool call or prompt, otherwise the
    parameters without their `_meta` (trace context, progress token)."""
    if not params:
        return None
    if method in ("tools/call", "prompts/get"):
        return params.get("arguments")
    rest = {k: v for k, v in params.items() if k != "_meta"}
    return rest or None


def result_outcome(method: str, result: dict[str, Any], response_bytes: int, policy: CapturePolicy) -> Outcome:
    """The outcome of a successful JSON-RPC response: `tool_error` when a tool's result has isError."""
    is_error = result.get("isError") is True if method == "tools/call" else None
    kept, cut = None, False
    if policy.results:
        # Results can hold secrets as easily as arguments (an env dump, a config file): masked
        # unless the operator asked for full arguments too.
        kept, cut = capture(result, "full" if policy.arguments == "full" else "masked", policy.max_bytes)
    return Outcome(
        status=STATUS_TOOL_ERROR if is_error is True else STATUS_OK,
        response_bytes=response_bytes,
        is_error=is_error,
        result=kept,
        result_truncated=cut,
    )


def error_outcome(code: int, message: str, response_bytes: int, *, status: str = STATUS_ERROR) -> Outcome:
    return Outcome(status=status, response_bytes=response_bytes, error_code=code, error_message=message)


def request_event(call: CallRecord, outcome: Outcome, session: SessionInfo, duration_s: float) -> dict[str, Any]:
    """The audit event for `call`, settled with `outcome` after `duration_s`."""
    attributes: dict[str, Any] = {
        ATTR_REQUEST_ID: call.request_id,
        ATTR_DIRECTION: call.direction,
        ATTR_TRANSPORT: session.transport,
        ATTR_REQUEST_BYTES: call.request_bytes,
        ATTR_RESPONSE_BYTES: outcome.response_bytes,
    }
    _session_attributes(attributes, session)
    if call.arguments is not None:
        attributes[ATTR_ARGUMENTS] = call.arguments
        if call.arguments_truncated:
            attributes[ATTR_ARGUMENTS_TRUNCATED] = True
    if outcome.is_error is not None:
        attributes[ATTR_IS_ERROR] = outcome.is_error
    if outcome.result is not None:
        attributes[ATTR_RESULT] = outcome.result
        if outcome.result_truncated:
            attributes[ATTR_RESULT_TRUNCATED] = True
    if outcome.error_code is not None:
        attributes[ATTR_ERROR_CODE] = outcome.error_code
    if outcome.error_message is not None:
        attributes[ATTR_ERROR_MESSAGE] = outcome.error_message[:_MAX_ERROR_MESSAGE]
    if outcome.cancel_reason is not None:
        attributes[ATTR_CANCEL_REASON] = outcome.cancel_reason[:_MAX_ERROR_MESSAGE]
    event = _base(event_type(call.method), call.method, call.started_at, session, call.traceparent, call.tracestate)
    if call.target is not None:
        event["tool"] = _cut(call.target)
    event["status"] = outcome.status
    event["duration_ms"] = round(max(duration_s, 0.0) * 1000.0, 3)
    event["attributes"] = attributes
    return event


def notification_event(
    method: str,
    params: dict[str, Any] | None,
    direction: str,
    size: int,
    at: float,
    session: SessionInfo,
    traceparent: str = "",
    tracestate: str = "",
) -> dict[str, Any]:
    """The audit event of an audited notification (see `audited_notification`)."""
    attributes: dict[str, Any] = {
        ATTR_DIRECTION: direction,
        ATTR_TRANSPORT: session.transport,
        ATTR_REQUEST_BYTES: size,
    }
    _session_attributes(attributes, session)
    if method == "notifications/cancelled" and params:
        attributes[ATTR_CANCELLED_REQUEST_ID] = params.get("requestId")
        if isinstance(params.get("reason"), str):
            attributes[ATTR_CANCEL_REASON] = params["reason"][:_MAX_ERROR_MESSAGE]
    event = _base(TYPE_NOTIFICATION, method, at, session, traceparent, tracestate)
    event["status"] = STATUS_OK
    event["attributes"] = attributes
    return event


def _base(kind: str, method: str, at: float, session: SessionInfo, traceparent: str, tracestate: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "server": _cut(session.server),
        "method": _cut(method),
        "session_id": _cut(session.session_id),
    }
    if session.principal:
        event["principal"] = _cut(session.principal)
    if traceparent:
        event[events.TRACEPARENT_FIELD] = traceparent
        if tracestate:
            event[events.TRACESTATE_FIELD] = tracestate
    return event


def _session_attributes(attributes: dict[str, Any], session: SessionInfo) -> None:
    if session.protocol_version:
        attributes[ATTR_PROTOCOL_VERSION] = session.protocol_version
    if session.client_name:
        attributes[ATTR_CLIENT_NAME] = session.client_name
    if session.client_version:
        attributes[ATTR_CLIENT_VERSION] = session.client_version


def _cut(value: str) -> str:
    return value[: events.MAX_ID_LENGTH]

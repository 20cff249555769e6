"""Audit events: types, targets, outcomes and the contract's field names."""

from __future__ import annotations

import uuid

from mcp_proxy import audit
from mcp_proxy.audit import CallRecord, CapturePolicy, SessionInfo
from sentinel import events


def _session() -> SessionInfo:
    return SessionInfo("everything", "s-1", "stdio", "alice", "2025-11-25", "client", "1.0")


def _call(method: str = "tools/call", target: str | None = "echo") -> CallRecord:
    return CallRecord(7, method, target, audit.CLIENT_TO_SERVER, 1_700_000_000.25, 0.0, 120, {"message": "hi"})


def test_event_types() -> None:
    assert audit.event_type("tools/call") == "tool_call"
    assert audit.event_type("resources/read") == "mcp.request"
    assert audit.audited_notification("notifications/initialized")
    assert audit.audited_notification("notifications/cancelled")
    assert audit.audited_notification("notifications/tools/list_changed")
    assert not audit.audited_notification("notifications/progress")
    assert not audit.audited_notification("notifications/message")


def test_targets() -> None:
    assert audit.target_of("tools/call", {"name": "echo"}) == "echo"
    assert audit.target_of("prompts/get", {"name": "simple"}) == "simple"
    assert audit.target_of("resources/read", {"uri": "demo://r/1"}) == "demo://r/1"
    assert audit.target_of("tools/list", {}) is None


def test_request_event_has_the_contract_fields_and_is_valid() -> None:
    outcome = audit.result_outcome("tools/call", {"content": [], "isError": False}, 64, CapturePolicy())
    event = audit.request_event(_call(), outcome, _session(), 0.0125)
    assert events.validate(event) is None
    uuid.UUID(event["event_id"])
    assert event["type"] == "tool_call"
    assert event["timestamp"] == "2023-11-14T22:13:20.250000Z"
    assert (event["server"], event["method"], event["tool"], event["status"]) == (
        "everything",
        "tools/call",
        "echo",
        "ok",
    )
    assert event["duration_ms"] == 12.5
    assert (event["session_id"], event["principal"]) == ("s-1", "alice")
    attributes = event["attributes"]
    assert attributes[audit.ATTR_REQUEST_ID] == 7
    assert attributes[audit.ATTR_DIRECTION] == "client->server"
    assert attributes[audit.ATTR_PROTOCOL_VERSION] == "2025-11-25"
    assert (attributes[audit.ATTR_CLIENT_NAME], attributes[audit.ATTR_CLIENT_VERSION]) == ("client", "1.0")
    assert (attributes[audit.ATTR_REQUEST_BYTES], attributes[audit.ATTR_RESPONSE_BYTES]) == (120, 64)
    assert attributes[audit.ATTR_IS_ERROR] is False
    assert audit.ATTR_RESULT not in attributes


def test_is_error_is_a_tool_error() -> None:
    outcome = audit.result_outcome("tools/call", {"content": [], "isError": True}, 10, CapturePolicy())
    assert outcome.status == audit.STATUS_TOOL_ERROR


def test_error_and_trace_fields() -> None:
    call = _call()
    call.traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    call.tracestate = "vendor=x"
    event = audit.request_event(call, audit.error_outcome(-32602, "bad arguments", 90), _session(), 0.001)
    assert event["status"] == "error"
    assert event[events.TRACEPARENT_FIELD] == call.traceparent
    assert event[events.TRACESTATE_FIELD] == "vendor=x"
    assert event["attributes"][audit.ATTR_ERROR_CODE] == -32602
    assert event["attributes"][audit.ATTR_ERROR_MESSAGE] == "bad arguments"


def test_capture_policies() -> None:
    arguments = {"query": "q", "api_key": "k"}
    assert audit.capture(arguments, "none", 1000) == (None, False)
    assert audit.capture(arguments, "masked", 1000) == ({"query": "q", "api_key": "[MASKED]"}, False)
    assert audit.capture(arguments, "full", 1000) == (arguments, False)
    kept, cut = audit.capture({"text": "x" * 500}, "full", 100)
    assert cut and isinstance(kept, str) and len(kept) <= 100


def test_results_are_kept_only_when_asked_and_masked() -> None:
    result = {"content": [{"type": "text", "text": "password=hunter2 token ghp_abcdefghijklmnopqrstuvwxyz"}]}
    assert audit.result_outcome("tools/call", result, 1, CapturePolicy()).result is None
    kept = audit.result_outcome("tools/call", result, 1, CapturePolicy(results=True)).result
    assert "ghp_abcdefghijklmnopqrstuvwxyz" not in str(kept)


def test_request_arguments() -> None:
    assert audit.request_arguments("tools/call", {"name": "echo", "arguments": {"a": 1}}) == {"a": 1}
    assert audit.request_arguments("resources/read", {"uri": "u", "_meta": {"progressToken": 1}}) == {"uri": "u"}
    assert audit.request_arguments("tools/list", None) is None


def test_principal_for_token_is_stable_and_hides_the_token() -> None:
    principal = audit.principal_for_token("s3cret-token")
    assert principal == audit.principal_for_token("s3cret-token")
    assert principal.startswith("token:") and len(principal) == len("token:") + 16
    assert "s3cret" not in principal


def test_long_strings_are_cut_to_what_ingest_takes() -> None:
    call = _call("resources/read", "demo://" + "x" * 5000)
    event = audit.request_event(call, audit.result_outcome("resources/read", {}, 1, CapturePolicy()), _session(), 0)
    assert events.validate(event) is None


def test_notification_event() -> None:
    event = audit.notification_event(
        "notifications/cancelled", {"requestId": 7, "reason": "user"}, audit.CLIENT_TO_SERVER, 70, 1.0, _session()
    )
    assert events.validate(event) is None
    assert (event["type"], event["status"]) == ("mcp.notification", "ok")
    assert event["attributes"][audit.ATTR_CANCELLED_REQUEST_ID] == 7

"""The relay between two in-memory transports: what passes, what is audited, which spans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mcp_proxy import audit
from mcp_proxy.audit import CapturePolicy, SessionInfo
from mcp_proxy.relay import ERROR_UPSTREAM_CLOSED, UPSTREAM_CLOSED, Relay
from mcp_proxy.sdk_side import SdkSide
from sentinel import events as event_fields
from sentinel import semconv

CLIENT_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Wire:
    """Both transports' ends as the test holds them."""

    from_client: Any
    to_client: Any
    from_upstream: Any
    to_upstream: Any
    events: list[dict[str, Any]] = field(default_factory=list)

    async def client_sends(self, message: Any) -> None:
        await self.from_client.send(SessionMessage(message))

    async def upstream_sends(self, message: Any) -> None:
        await self.from_upstream.send(SessionMessage(message))


def _run(body: Callable[[Wire], Awaitable[None]], *, timeout_s: float = 0.0) -> Wire:
    result: list[Wire] = []

    async def main() -> None:
        client_in, client_read = anyio.create_memory_object_stream[Any](10)
        client_write, client_out = anyio.create_memory_object_stream[Any](10)
        upstream_in, upstream_read = anyio.create_memory_object_stream[Any](10)
        upstream_write, upstream_out = anyio.create_memory_object_stream[Any](10)
        wire = Wire(client_in, client_out, upstream_in, upstream_out)
        session = SessionInfo("everything", "session-1", "stdio", "alice")
        relay = Relay(session, CapturePolicy(), wire.events.append, timeout_s=timeout_s)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(relay.run, SdkSide(client_read, client_write), SdkSide(upstream_read, upstream_write))
                await body(wire)
                client_in.close()
        result.append(wire)

    anyio.run(main)
    return result[0]


def _call(request_id: int = 1, name: str = "echo", **meta: Any) -> JSONRPCRequest:
    params: dict[str, Any] = {"name": name, "arguments": {"message": "hi", "token": "t0ps3cret"}}
    if meta:
        params["_meta"] = meta
    return JSONRPCRequest(jsonrpc="2.0", id=request_id, method="tools/call", params=params)


def test_a_call_passes_with_only_the_trace_context_added(spans: InMemorySpanExporter) -> None:
    async def body(wire: Wire) -> None:
        await wire.client_sends(_call(progressToken="p1", traceparent=CLIENT_TRACEPARENT))
        forwarded = (await wire.to_upstream.receive()).message
        meta = forwarded.params["_meta"]
        assert meta["progressToken"] == "p1"
        assert meta["traceparent"] != CLIENT_TRACEPARENT
        assert {k: v for k, v in forwarded.params.items() if k != "_meta"} == {
            "name": "echo",
            "arguments": {"message": "hi", "token": "t0ps3cret"},
        }
        wire.forwarded_traceparent = meta["traceparent"]  # type: ignore[attr-defined]
        progress = JSONRPCNotification(
            jsonrpc="2.0", method="notifications/progress", params={"progressToken": "p1", "progress": 1}
        )
        await wire.upstream_sends(progress)
        assert (await wire.to_client.receive()).message == progress
        response = JSONRPCResponse(jsonrpc="2.0", id=1, result={"content": [{"type": "text", "text": "Echo: hi"}]})
        await wire.upstream_sends(response)
        assert (await wire.to_client.receive()).message == response

    wire = _run(body)
    [event] = wire.events
    assert (event["type"], event["tool"], event["status"]) == ("tool_call", "echo", "ok")
    assert event["attributes"]["arguments"] == {"message": "hi", "token": "[MASKED]"}
    by_kind = {span.kind: span for span in spans.get_finished_spans()}
    server, client = by_kind[SpanKind.SERVER], by_kind[SpanKind.CLIENT]
    assert server.name == client.name == "tools/call echo"
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"
    assert f"{server.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert client.parent.span_id == server.context.span_id
    assert wire.forwarded_traceparent.split("-")[2] == f"{client.context.span_id:016x}"  # type: ignore[attr-defined]
    assert event[event_fields.TRACEPARENT_FIELD].split("-")[2] == f"{server.context.span_id:016x}"
    assert server.attributes[semconv.MCP_METHOD_NAME] == "tools/call"
    assert server.attributes[semconv.GEN_AI_TOOL_NAME] == "echo"
    assert server.attributes[semconv.JSONRPC_REQUEST_ID] == "1"
    assert server.attributes[semconv.MCP_SESSION_ID] == "session-1"


def test_a_server_initiated_request_is_relayed_and_audited_the_other_way(spans: InMemorySpanExporter) -> None:
    sampling = JSONRPCRequest(jsonrpc="2.0", id=0, method="sampling/createMessage", params={"messages": []})

    async def body(wire: Wire) -> None:
        await wire.client_sends(_call())
        await wire.to_upstream.receive()
        await wire.upstream_sends(sampling)
        assert (await wire.to_client.receive()).message.method == "sampling/createMessage"
        answer = JSONRPCResponse(jsonrpc="2.0", id=0, result={"role": "assistant", "content": {"type": "text"}})
        await wire.client_sends(answer)
        assert (await wire.to_upstream.receive()).message == answer
        await wire.upstream_sends(JSONRPCResponse(jsonrpc="2.0", id=1, result={"content": []}))
        await wire.to_client.receive()

    wire = _run(body)
    by_method = {event["method"]: event for event in wire.events}
    assert by_method["sampling/createMessage"]["attributes"]["direction"] == "server->client"
    assert by_method["sampling/createMessage"]["status"] == "ok"
    by_name_kind = {(span.name, span.kind): span for span in spans.get_finished_spans()}
    sampling_server = by_name_kind["sampling/createMessage", SpanKind.SERVER]
    sampling_client = by_name_kind["sampling/createMessage", SpanKind.CLIENT]
    # With one client call in flight, the server's request is taken to be part of it.
    assert sampling_server.parent.span_id == by_name_kind["tools/call echo", SpanKind.CLIENT].context.span_id
    assert sampling_client.parent.span_id == sampling_server.context.span_id


def test_a_cancelled_call_is_audited_cancelled() -> None:
    async def body(wire: Wire) -> None:
        await wire.client_sends(_call())
        await wire.to_upstream.receive()
        cancel = JSONRPCNotification(
            jsonrpc="2.0", method="notifications/cancelled", params={"requestId": 1, "reason": "user"}
        )
        await wire.client_sends(cancel)
        assert (await wire.to_upstream.receive()).message == cancel

    wire = _run(body)
    statuses = {(event["method"], event["status"]) for event in wire.events}
    assert statuses == {("tools/call", "cancelled"), ("notifications/cancelled", "ok")}


def test_the_upstream_gone_answers_open_calls_with_an_error_and_audits_them_failed(
    spans: InMemorySpanExporter,
) -> None:
    async def body(wire: Wire) -> None:
        await wire.client_sends(_call())
        await wire.to_upstream.receive()
        wire.from_upstream.close()
        answer = (await wire.to_client.receive()).message
        assert isinstance(answer, JSONRPCError)
        assert (answer.id, answer.error.code, answer.error.message) == (1, CONNECTION_CLOSED, UPSTREAM_CLOSED)

    wire = _run(body)
    [event] = wire.events
    assert event["status"] == "failed"
    assert event["attributes"]["error_code"] == CONNECTION_CLOSED
    server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert server.attributes[semconv.ERROR_TYPE] == ERROR_UPSTREAM_CLOSED


def test_errors_and_tool_errors(spans: InMemorySpanExporter) -> None:
    async def body(wire: Wire) -> None:
        await wire.client_sends(_call(1))
        await wire.client_sends(_call(2))
        await wire.to_upstream.receive()
        await wire.to_upstream.receive()
        error = JSONRPCError(jsonrpc="2.0", id=1, error=ErrorData(code=-32602, message="Unknown tool"))
        await wire.upstream_sends(error)
        assert (await wire.to_client.receive()).message == error
        await wire.upstream_sends(JSONRPCResponse(jsonrpc="2.0", id=2, result={"content": [], "isError": True}))
        await wire.to_client.receive()

    wire = _run(body)
    by_id = {event["attributes"][audit.ATTR_REQUEST_ID]: event for event in wire.events}
    assert by_id[1]["status"] == "error" and by_id[1]["attributes"]["error_code"] == -32602
    assert by_id[2]["status"] == "tool_error"
    error_types = {s.attributes.get(semconv.ERROR_TYPE) for s in spans.get_finished_spans()}
    assert {"-32602", "tool_error"} <= error_types


def test_a_timed_out_call_is_audited_failed_once_and_its_late_response_still_passes() -> None:
    async def body(wire: Wire) -> None:
        await wire.client_sends(_call())
        await wire.to_upstream.receive()
        while not wire.events:
            await anyio.sleep(0.01)
        late = JSONRPCResponse(jsonrpc="2.0", id=1, result={"content": []})
        await wire.upstream_sends(late)
        assert (await wire.to_client.receive()).message == late

    wire = _run(body, timeout_s=0.05)
    [event] = wire.events
    assert event["status"] == "failed"


def test_notifications_pass_and_only_some_are_audited() -> None:
    log_message = JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"level": "info"})
    changed = JSONRPCNotification(jsonrpc="2.0", method="notifications/tools/list_changed")

    async def body(wire: Wire) -> None:
        for message in (log_message, changed):
            await wire.upstream_sends(message)
            assert (await wire.to_client.receive()).message == message

    wire = _run(body)
    assert [event["method"] for event in wire.events] == ["notifications/tools/list_changed"]


def test_initialize_fills_the_session_fields() -> None:
    initialize = JSONRPCRequest(
        jsonrpc="2.0",
        id=0,
        method="initialize",
        params={"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "ide", "version": "9"}},
    )

    async def body(wire: Wire) -> None:
        await wire.client_sends(initialize)
        await wire.to_upstream.receive()
        await wire.upstream_sends(JSONRPCResponse(jsonrpc="2.0", id=0, result={"protocolVersion": "2025-06-18"}))
        await wire.to_client.receive()

    wire = _run(body)
    attributes = wire.events[0]["attributes"]
    assert (attributes["client_name"], attributes["client_version"]) == ("ide", "9")
    assert attributes["protocol_version"] == "2025-06-18"


def test_the_client_closing_audits_open_calls_failed() -> None:
    async def body(wire: Wire) -> None:
        await wire.client_sends(_call())
        await wire.to_upstream.receive()

    wire = _run(body)
    assert [event["status"] for event in wire.events] == ["failed"]


def test_messages_from_the_upstream_are_routed_to_the_client_request_they_belong_to() -> None:
    """For an HTTP client, a progress notification goes to the response stream of the request
    whose token it carries; another server message to the one request in flight, if one."""

    async def body(wire: Wire) -> None:
        await wire.client_sends(_call(1, progressToken="t1"))
        await wire.client_sends(_call(2, progressToken="t2"))
        await wire.to_upstream.receive()
        await wire.to_upstream.receive()
        progress = JSONRPCNotification(
            jsonrpc="2.0", method="notifications/progress", params={"progressToken": "t2", "progress": 1}
        )
        await wire.upstream_sends(progress)
        assert (await wire.to_client.receive()).metadata.related_request_id == 2
        log_message = JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"level": "info"})
        await wire.upstream_sends(log_message)
        assert (await wire.to_client.receive()).metadata is None  # two in flight: no telling which
        await wire.upstream_sends(JSONRPCResponse(jsonrpc="2.0", id=2, result={"content": []}))
        await wire.to_client.receive()
        await wire.upstream_sends(log_message)
        assert (await wire.to_client.receive()).metadata.related_request_id == 1

    _run(body)

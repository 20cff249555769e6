"""The relay: every JSON-RPC message of one MCP session, passed between client and upstream.

It works on the SDK's transport streams (`SessionMessage`s), below any session or server layer,
so it needs no handler per method: requests, notifications, responses and errors pass in both
directions whatever they are, server-initiated requests (sampling, elicitation, roots, ping)
included. A message is passed on as it came; the one change is the trace context that requests
carry under `params._meta` (tracing.py). "As it came" is JSON-RPC content: the transports parse
each message and write it again (`exclude_unset`), so whitespace may differ, and a line or body
that is not JSON-RPC at all stops at the transport that read it (the SDK's transports do the same).

On the side it notes each request, and when the request's outcome is known (its response or
error, a `notifications/cancelled` for its id, the upstream gone, or the audit timeout) it ends
the request's spans, counts it, and hands one audit event to `submit`, which never blocks.

What a call waits for is only what the message needs: a request's spans (their context goes into
`_meta`) and its entry in the table of open requests. Everything else, the arguments' capture and
masking, a response's size and outcome, ending the spans, the metrics and the audit event, is done
once the message is handed to the other side's transport and that transport has had its turn to
write it (`_after_handover`), while the peer is busy with it.

Outcomes that are not a response:
- the upstream closes (exits, crashes): every request it had not answered is answered to the
  client by the proxy with a JSON-RPC error (CONNECTION_CLOSED, as the SDK reports a closed
  connection) and audited `failed`; then the session ends;
- the client closes: its open requests are audited `failed`; the upstream is shut down;
- SENTINEL_PROXY_REQUEST_TIMEOUT_S passes: the request is audited `failed`, but the relay keeps
  waiting for it and a late response still reaches the client (the client owns its deadlines;
  the audit trail must not wait forever, nor lose a call when the proxy stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.shared.message import ClientMessageMetadata, ServerMessageMetadata, SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)
from starlette.requests import Request

from mcp_proxy import audit, tracing
from mcp_proxy.audit import CallRecord, CapturePolicy, Outcome, SessionInfo
from sentinel import metrics, semconv

log = logging.getLogger(__name__)

Submit = Callable[[dict[str, Any]], None]

UPSTREAM_CLOSED = "upstream MCP server closed the connection"
CLIENT_CLOSED = "the client closed the connection"
# error.type of calls that end without a response (the conventions leave these to the instrumentation).
ERROR_UPSTREAM_CLOSED = "upstream_closed"
ERROR_UPSTREAM_UNAVAILABLE = "upstream_unavailable"
ERROR_CLIENT_CLOSED = "client_closed"
ERROR_TIMEOUT = "timeout"
ERROR_ID_REUSED = "id_reused"
_PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
# Methods counted under their own name in metrics; anything else is "other" (labels stay bounded).
_KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "logging/setLevel",
        "sampling/createMessage",
        "elicitation/create",
        "roots/list",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        "server/discover",
    }
)


@dataclass(slots=True)
class _Pending:
    call: CallRecord
    spans: tracing.CallSpans
    # The HTTP server transport's hook that ends a request's response stream when it will get no
    # response (a cancelled request); None over stdio.
    unanswered: Callable[[], Awaitable[None]] | None = None
    progress_token: Any = None
    audited: bool = False
    # The request's params as received, captured (by the policy) when the call is audited.
    params: dict[str, Any] | None = None


class Relay:
    """Relays one session. Not thread-safe; one instance per client session.

    `upstream_http` says whether the upstream is a Streamable HTTP server, whose client transport
    wants the negotiated protocol version stamped on each message (the MCP-Protocol-Version header).
    """

    def __init__(
        self,
        session: SessionInfo,
        policy: CapturePolicy,
        submit: Submit,
        *,
        timeout_s: float = 0.0,
        upstream_http: bool = False,
    ) -> None:
        self.session = session
        self.policy = policy
        self.submit = submit
        self.timeout_s = timeout_s
        self.upstream_http = upstream_http
        self.from_client: dict[Any, _Pending] = {}
        self.from_server: dict[Any, _Pending] = {}
        self._progress: dict[Any, Any] = {}  # progress token -> the client request it reports on
        self._upstream_metadata: ClientMessageMetadata | None = None

    async def run(
        self,
        client: tuple[Any, Any],
        upstream: tuple[Any, Any],
    ) -> None:
        """Relay until either side closes. `client` and `upstream` are (read, write) stream pairs
        of a transport; on return every request seen has been audited."""
        client_read, client_write = client
        upstream_read, upstream_write = upstream
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._client_to_upstream, client_read, upstream_write, tg.cancel_scope)
            tg.start_soon(self._upstream_to_client, upstream_read, client_write, tg.cancel_scope)
            if self.timeout_s > 0:
                tg.start_soon(self._sweep)

    # -- client -> upstream ----------------------------------------------------------------------

    async def _client_to_upstream(self, read: Any, write: Any, scope: anyio.CancelScope) -> None:
        # A transport may close the stream it hands over (a deleted HTTP session) rather than end it.
        with contextlib.suppress(anyio.ClosedResourceError):
            async with read:
                async for item in read:
                    if not await self._pass_from_client(item, write):
                        break
        self._fail_all(self.from_client, ERROR_CLIENT_CLOSED, CLIENT_CLOSED)
        self._fail_all(self.from_server, ERROR_CLIENT_CLOSED, CLIENT_CLOSED)
        scope.cancel()

    async def _pass_from_client(self, item: SessionMessage | Exception, write: Any) -> bool:
        """Note and pass on one message from the client; False once the upstream is gone."""
        if isinstance(item, Exception):
            # The transport could not parse a line or body; it has told the client where it could.
            log.warning("unreadable message from the client: %s", item)
            return True
        message = item.message
        unanswered = None
        answered = None
        if isinstance(message, JSONRPCRequest):
            self._request(item, audit.CLIENT_TO_SERVER, self.from_client)
        elif isinstance(message, JSONRPCNotification):
            unanswered = self._notification(message, audit.CLIENT_TO_SERVER, self.from_client)
        else:
            answered = self._answered(self.from_server, message)
        try:
            await write.send(SessionMessage(message, metadata=self._upstream_metadata))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            if answered is not None:
                self._settle(answered, message)
            return False  # the other direction settles what is open
        if answered is not None:
            _after_handover(self._settle, answered, message)
        if unanswered is not None:
            # The upstream will not answer a cancelled request: end the client's response stream
            # the way the SDK's own servers do.
            await unanswered()
        return True

    # -- upstream -> client ----------------------------------------------------------------------

    async def _upstream_to_client(self, read: Any, write: Any, scope: anyio.CancelScope) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):
            async with read:
                async for item in read:
                    if not await self._pass_from_upstream(item, write):
                        break
        await self.upstream_gone(write)
        scope.cancel()

    async def _pass_from_upstream(self, item: SessionMessage | Exception, write: Any) -> bool:
        """Note and pass on one message from the upstream; False once the client is gone."""
        if isinstance(item, Exception):
            log.warning("unreadable message from the upstream: %s", item)
            return True
        message = item.message
        metadata: ServerMessageMetadata | None = None
        answered = None
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            answered = self._answered(self.from_client, message)
        elif isinstance(message, JSONRPCRequest):
            self._request(item, audit.SERVER_TO_CLIENT, self.from_server)
            metadata = self._related(message)
        else:
            self._notification(message, audit.SERVER_TO_CLIENT, self.from_server)
            metadata = self._related(message)
        try:
            await write.send(SessionMessage(message, metadata=metadata))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            if answered is not None:
                self._settle(answered, message)
            return False
        if answered is not None:
            _after_handover(self._settle, answered, message)
        return True

    async def upstream_gone(self, write: Any) -> None:
        """Answer what the upstream left unanswered, so no client waits on a server that is gone
        (a no-op once done). `write` is the client transport's write stream."""
        for request_id, pending in list(self.from_client.items()):
            error = JSONRPCError(
                jsonrpc="2.0", id=request_id, error=ErrorData(code=CONNECTION_CLOSED, message=UPSTREAM_CLOSED)
            )
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await write.send(SessionMessage(error))
            self.from_client.pop(request_id, None)
            if not pending.audited:
                self._finish(
                    pending,
                    audit.error_outcome(CONNECTION_CLOSED, UPSTREAM_CLOSED, 0, status=audit.STATUS_FAILED),
                    ERROR_UPSTREAM_CLOSED,
                )
        self._fail_all(self.from_server, ERROR_UPSTREAM_CLOSED, UPSTREAM_CLOSED)

    async def refuse(self, client: tuple[Any, Any], reason: str) -> None:
        """Answer every request of the client with a JSON-RPC error saying `reason` (and audit it
        `failed`) until the client closes: what a client sees when its upstream cannot be started,
        instead of a connection that just ends."""
        read, write = client
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            async with read:
                async for item in read:
                    if isinstance(item, Exception) or not isinstance(item.message, JSONRPCRequest):
                        continue
                    self._request(item, audit.CLIENT_TO_SERVER, self.from_client)
                    pending = self.from_client.pop(item.message.id)
                    error = ErrorData(code=CONNECTION_CLOSED, message=reason)
                    await write.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=item.message.id, error=error)))
                    outcome = audit.error_outcome(CONNECTION_CLOSED, reason, 0, status=audit.STATUS_FAILED)
                    self._finish(pending, outcome, ERROR_UPSTREAM_UNAVAILABLE)

    # -- bookkeeping -------------------------------------------------------------------------------

    def _request(self, item: SessionMessage, direction: str, table: dict[Any, _Pending]) -> None:
        message = item.message
        assert isinstance(message, JSONRPCRequest)
        method = message.method
        params = message.params
        size = _size(message)
        if method == "initialize" and params and direction == audit.CLIENT_TO_SERVER:
            self._note_initialize(params)
        meta = params.get("_meta") if params else None
        meta = meta if isinstance(meta, dict) else None
        headers = None
        unanswered = None
        if isinstance(item.metadata, ServerMessageMetadata):
            unanswered = item.metadata.on_request_unanswered
            if isinstance(item.metadata.request_context, Request):
                headers = item.metadata.request_context.headers
        target = audit.target_of(method, params)
        parent = tracing.parent_context(meta, headers)
        if parent is tracing.ROOT and direction == audit.SERVER_TO_CLIENT and len(self.from_client) == 1:
            # No context from the upstream (stdio and the SDK's HTTP client say nothing of which
            # call a server request belongs to): with one client call in flight, it is that one's.
            parent = tracing.context_of(next(iter(self.from_client.values())).spans)
        spans = tracing.start(method, target, message.id, self.session, parent, params)
        carrier = tracing.inject(spans)
        if carrier:
            changed = dict(params or {})
            changed["_meta"] = {**(meta or {}), **carrier}
            message.params = changed
        traceparent, tracestate = tracing.server_context(spans)
        call = CallRecord(
            request_id=message.id,
            method=method,
            target=target,
            direction=direction,
            started_at=time.time(),
            started=time.monotonic(),
            request_bytes=size,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        token = meta.get("progressToken") if meta else None
        if token is not None and direction == audit.CLIENT_TO_SERVER:
            self._progress[token] = message.id
        previous = table.get(message.id)
        if previous is not None and not previous.audited:
            log.warning("request id %r reused while in flight; the first is audited failed", message.id)
            self._finish(
                previous, audit.error_outcome(0, "request id reused", 0, status=audit.STATUS_FAILED), ERROR_ID_REUSED
            )
        table[message.id] = _Pending(call, spans, unanswered, token, params=params)

    def _note_initialize(self, params: dict[str, Any]) -> None:
        info = params.get("clientInfo")
        if isinstance(info, dict):
            self.session.client_name = _str_or_none(info.get("name"))
            self.session.client_version = _str_or_none(info.get("version"))
        self.session.protocol_version = _str_or_none(params.get("protocolVersion"))

    def _answered(self, table: dict[Any, _Pending], message: JSONRPCMessage) -> _Pending | None:
        """Take the request a response or error answers off the open ones (None if unknown), before
        the answer is passed on: once passed, the request must never be answered again (upstream_gone)."""
        assert isinstance(message, JSONRPCResponse | JSONRPCError)
        pending = table.pop(message.id, None)
        if pending is None:
            return None
        if pending.progress_token is not None:
            self._progress.pop(pending.progress_token, None)
        if isinstance(message, JSONRPCResponse) and pending.call.method == "initialize":
            # Before the client can send anything else upstream.
            self._note_negotiated(message.result)
        return pending

    def _settle(self, pending: _Pending, message: JSONRPCMessage) -> None:
        """Audit the request `message` answered (`_answered`), unless the audit timeout already did."""
        assert isinstance(message, JSONRPCResponse | JSONRPCError)
        if pending.audited:
            return  # a late response after the audit timeout: relayed, already audited
        size = _size(message)
        if isinstance(message, JSONRPCResponse):
            outcome = audit.result_outcome(pending.call.method, message.result, size, self.policy)
            error_type = semconv.ERROR_TYPE_TOOL_ERROR if outcome.status == audit.STATUS_TOOL_ERROR else None
        else:
            outcome = audit.error_outcome(message.error.code, message.error.message, size)
            error_type = str(message.error.code)
        self._finish(pending, outcome, error_type)

    def _note_negotiated(self, result: dict[str, Any]) -> None:
        version = _str_or_none(result.get("protocolVersion"))
        if version:
            self.session.protocol_version = version
            if self.upstream_http:
                self._upstream_metadata = ClientMessageMetadata(headers={_PROTOCOL_VERSION_HEADER: version})

    def _notification(
        self, message: JSONRPCNotification, direction: str, senders_requests: dict[Any, _Pending]
    ) -> Callable[[], Awaitable[None]] | None:
        """Audit the notifications worth it; a cancellation also settles the request it names (a
        request is only ever cancelled by its sender). Returns the transport's hook to call once
        the cancellation is passed on, if the cancelled request has one."""
        method = message.method
        if not audit.audited_notification(method):
            return None
        params = message.params
        unanswered = None
        if method == "notifications/cancelled" and params:
            pending = senders_requests.pop(params.get("requestId"), None)
            if pending is not None:
                unanswered = pending.unanswered
                if pending.progress_token is not None:
                    self._progress.pop(pending.progress_token, None)
                if not pending.audited:
                    reason = _str_or_none(params.get("reason"))
                    self._finish(pending, Outcome(status=audit.STATUS_CANCELLED, cancel_reason=reason), None)
        meta = params.get("_meta") if params else None
        traceparent = meta.get("traceparent", "") if isinstance(meta, dict) else ""
        tracestate = meta.get("tracestate", "") if isinstance(meta, dict) else ""
        self.submit(
            audit.notification_event(
                method,
                params,
                direction,
                _size(message),
                time.time(),
                self.session,
                traceparent if isinstance(traceparent, str) else "",
                tracestate if isinstance(tracestate, str) else "",
            )
        )
        return unanswered

    def _related(self, message: JSONRPCRequest | JSONRPCNotification) -> ServerMessageMetadata | None:
        """Which client request a message from the upstream belongs to, for an HTTP client's
        response streams: a progress notification names its request by token; anything else is
        taken to belong to the one client request in flight, if there is exactly one (neither
        stdio nor the SDK's HTTP client transport says more). Otherwise it goes to the client's
        GET stream."""
        related = None
        if message.method == "notifications/progress" and message.params:
            related = self._progress.get(message.params.get("progressToken"))
        elif len(self.from_client) == 1:
            related = next(iter(self.from_client))
        return None if related is None else ServerMessageMetadata(related_request_id=related)

    def _fail_all(self, table: dict[Any, _Pending], error_type: str, message: str) -> None:
        for pending in table.values():
            if not pending.audited:
                self._finish(pending, audit.error_outcome(0, message, 0, status=audit.STATUS_FAILED), error_type)
        table.clear()

    def _finish(self, pending: _Pending, outcome: Outcome, error_type: str | None) -> None:
        pending.audited = True
        call = pending.call
        duration = time.monotonic() - call.started
        if pending.params is not None:
            call.arguments, call.arguments_truncated = audit.capture(
                audit.request_arguments(call.method, pending.params), self.policy.arguments, self.policy.max_bytes
            )
        tracing.finish(pending.spans, error_type, outcome.error_message)
        label = call.method if call.method in _KNOWN_METHODS else "other"
        metrics.PROXY_CALLS.labels(self.session.server, label, outcome.status).inc()
        metrics.PROXY_CALL_DURATION.labels(self.session.server, label).observe(duration)
        self.submit(audit.request_event(call, outcome, self.session, duration))

    async def _sweep(self) -> None:
        """Audit requests with no outcome after timeout_s as failed (they stay relayed)."""
        period = min(1.0, self.timeout_s / 4)
        while True:
            await anyio.sleep(period)
            now = time.monotonic()
            for table in (self.from_client, self.from_server):
                for pending in list(table.values()):
                    if not pending.audited and now - pending.call.started >= self.timeout_s:
                        message = f"no outcome after {self.timeout_s:g} s"
                        self._finish(
                            pending, audit.error_outcome(0, message, 0, status=audit.STATUS_FAILED), ERROR_TIMEOUT
                        )


def _after_handover(callback: Callable[..., None], *args: Any) -> None:
    """Run `callback(*args)` right after the task a message was just handed to has had its turn.

    A stream hand-over wakes the receiving task (the transport's writer) without yielding; the event
    loop runs what is ready in order, so a callback scheduled now runs after that task's step (the
    message written) and before this task's next, with no turn of the loop of its own. It runs even
    if this task is cancelled meanwhile: it settles a request already answered.
    """
    asyncio.get_running_loop().call_soon(callback, *args)


def _size(message: JSONRPCMessage) -> int:
    """The message's size as the SDK's transports write it."""
    return len(jsonrpc_message_adapter.dump_json(message, by_alias=True, exclude_unset=True))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None

"""The relay: every JSON-RPC message of one MCP session, passed between client and upstream.

It works on two sides (side.py), below any session or server layer, so it needs no handler per
method: requests, notifications, responses and errors pass in both directions whatever they are,
server-initiated requests (sampling, elicitation, roots, ping) included. A message is passed on as
it came; the one change is the trace context that requests carry under `params._meta`
(tracing.py). Over stdio "as it came" is byte for byte (lines.py); over HTTP it is JSON-RPC
content, as the SDK's transports write it. A line from the client that is not one JSON-RPC message
is answered with a JSON-RPC error (parse error or invalid request) and goes no further; one from
the upstream is dropped with a warning, as the SDK's transports drop it.

On the side it notes each request, and when the request's outcome is known (its response or
error, a `notifications/cancelled` for its id, the upstream gone, or the audit timeout) it ends
the request's spans, counts it, and hands one audit event to `submit`, which never blocks.

What a call waits for is only what the message needs: a request's spans (their context goes into
`_meta`) and its entry in the table of open requests. Everything else, the arguments' capture and
masking, a response's size and outcome, ending the spans, the metrics and the audit event, is done
once the message is handed to the other side and that side has had its turn to write it
(`_after_handover`), while the peer is busy with it.

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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from mcp_proxy import audit, jsonrpc, tracing
from mcp_proxy.audit import CallRecord, CapturePolicy, Outcome, SessionInfo
from mcp_proxy.jsonrpc import CONNECTION_CLOSED, NotJsonRpc
from mcp_proxy.side import Received, Side
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
_SENT_ON_FAILURE = (anyio.BrokenResourceError, anyio.ClosedResourceError)

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
    unanswered: Callable[[], Awaitable[None]] | None = None  # side.Received.unanswered
    progress_token: Any = None
    audited: bool = False
    # The request's params as received, captured (by the policy) when the call is audited.
    params: dict[str, Any] | None = None


class Relay:
    """Relays one session. Not thread-safe; one instance per client session."""

    def __init__(self, session: SessionInfo, policy: CapturePolicy, submit: Submit, *, timeout_s: float = 0.0) -> None:
        self.session = session
        self.policy = policy
        self.submit = submit
        self.timeout_s = timeout_s
        self.from_client: dict[Any, _Pending] = {}
        self.from_server: dict[Any, _Pending] = {}
        self._progress: dict[Any, Any] = {}  # progress token -> the client request it reports on

    async def run(self, client: Side, upstream: Side) -> None:
        """Relay until either side closes; on return every request seen has been audited."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._client_to_upstream, client, upstream, tg.cancel_scope)
            tg.start_soon(self._upstream_to_client, upstream, client, tg.cancel_scope)
            if self.timeout_s > 0:
                tg.start_soon(self._sweep)

    # -- client -> upstream ----------------------------------------------------------------------

    async def _client_to_upstream(self, client: Side, upstream: Side, scope: anyio.CancelScope) -> None:
        # A transport may close the stream it hands over (a deleted HTTP session) rather than end it.
        with contextlib.suppress(anyio.ClosedResourceError):
            async for item in client.receive():
                if not await self._pass_from_client(item, client, upstream):
                    break
        self._fail_all(self.from_client, ERROR_CLIENT_CLOSED, CLIENT_CLOSED)
        self._fail_all(self.from_server, ERROR_CLIENT_CLOSED, CLIENT_CLOSED)
        scope.cancel()

    async def _pass_from_client(self, item: Received | NotJsonRpc, client: Side, upstream: Side) -> bool:
        """Note and pass on one message from the client; False once the upstream is gone."""
        if isinstance(item, NotJsonRpc):
            log.warning("a message from the client that is not JSON-RPC was answered with an error: %s", item)
            with contextlib.suppress(*_SENT_ON_FAILURE):
                await client.send(jsonrpc.error(item.request_id, item.code, item.reason))
            return True
        message = item.message
        kind = jsonrpc.kind_of(message)
        raw = item.raw
        unanswered = None
        answered = None
        if kind == "request":
            if self._request(item, audit.CLIENT_TO_SERVER, self.from_client):
                raw = None  # written again, with the trace context
        elif kind == "notification":
            unanswered = self._notification(item, audit.CLIENT_TO_SERVER, self.from_client)
        else:
            answered = self._answered(self.from_server, message, upstream)
        try:
            await upstream.send(message, raw=raw)
        except _SENT_ON_FAILURE:
            if answered is not None:
                self._settle(answered, item)
            return False  # the other direction settles what is open
        if answered is not None:
            _after_handover(self._settle, answered, item)
        if unanswered is not None:
            # The upstream will not answer a cancelled request: end the client's response stream
            # the way the SDK's own servers do.
            await unanswered()
        return True

    # -- upstream -> client ----------------------------------------------------------------------

    async def _upstream_to_client(self, upstream: Side, client: Side, scope: anyio.CancelScope) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):
            async for item in upstream.receive():
                if not await self._pass_from_upstream(item, client, upstream):
                    break
        await self.upstream_gone(client)
        scope.cancel()

    async def _pass_from_upstream(self, item: Received | NotJsonRpc, client: Side, upstream: Side) -> bool:
        """Note and pass on one message from the upstream; False once the client is gone."""
        if isinstance(item, NotJsonRpc):
            log.warning("a line from the upstream that is not JSON-RPC was dropped: %s", item)
            return True
        message = item.message
        kind = jsonrpc.kind_of(message)
        raw = item.raw
        related = None
        answered = None
        if kind == "response" or kind == "error":
            answered = self._answered(self.from_client, message, upstream)
        else:
            if kind == "request" and self._request(item, audit.SERVER_TO_CLIENT, self.from_server):
                raw = None
            elif kind == "notification":
                self._notification(item, audit.SERVER_TO_CLIENT, self.from_server)
            related = self._related(message)
        try:
            await client.send(message, raw=raw, related_request_id=related)
        except _SENT_ON_FAILURE:
            if answered is not None:
                self._settle(answered, item)
            return False
        if answered is not None:
            _after_handover(self._settle, answered, item)
        return True

    async def upstream_gone(self, client: Side) -> None:
        """Answer what the upstream left unanswered, so no client waits on a server that is gone
        (a no-op once done)."""
        for request_id, pending in list(self.from_client.items()):
            with contextlib.suppress(*_SENT_ON_FAILURE):
                await client.send(jsonrpc.error(request_id, CONNECTION_CLOSED, UPSTREAM_CLOSED))
            self.from_client.pop(request_id, None)
            if not pending.audited:
                self._finish(
                    pending,
                    audit.error_outcome(CONNECTION_CLOSED, UPSTREAM_CLOSED, 0, status=audit.STATUS_FAILED),
                    ERROR_UPSTREAM_CLOSED,
                )
        self._fail_all(self.from_server, ERROR_UPSTREAM_CLOSED, UPSTREAM_CLOSED)

    async def refuse(self, client: Side, reason: str) -> None:
        """Answer every request of the client with a JSON-RPC error saying `reason` (and audit it
        `failed`) until the client closes: what a client sees when its upstream cannot be started,
        instead of a connection that just ends."""
        with contextlib.suppress(*_SENT_ON_FAILURE):
            async for item in client.receive():
                if isinstance(item, NotJsonRpc) or jsonrpc.kind_of(item.message) != "request":
                    continue
                self._request(item, audit.CLIENT_TO_SERVER, self.from_client)
                request_id = item.message["id"]
                pending = self.from_client.pop(request_id)
                await client.send(jsonrpc.error(request_id, CONNECTION_CLOSED, reason))
                outcome = audit.error_outcome(CONNECTION_CLOSED, reason, 0, status=audit.STATUS_FAILED)
                self._finish(pending, outcome, ERROR_UPSTREAM_UNAVAILABLE)

    # -- bookkeeping -------------------------------------------------------------------------------

    def _request(self, item: Received, direction: str, table: dict[Any, _Pending]) -> bool:
        """Note a request and start its spans; True when its params changed (the trace context
        added), so it must be written again."""
        message = item.message
        method: str = message["method"]
        request_id = message["id"]
        params: dict[str, Any] | None = message.get("params")
        if method == "initialize" and params and direction == audit.CLIENT_TO_SERVER:
            self._note_initialize(params)
        meta = params.get("_meta") if params else None
        meta = meta if isinstance(meta, dict) else None
        target = audit.target_of(method, params)
        parent = tracing.parent_context(meta, item.headers)
        if parent is tracing.ROOT and direction == audit.SERVER_TO_CLIENT and len(self.from_client) == 1:
            # No context from the upstream (stdio and the SDK's HTTP client say nothing of which
            # call a server request belongs to): with one client call in flight, it is that one's.
            parent = tracing.context_of(next(iter(self.from_client.values())).spans)
        spans = tracing.start(method, target, request_id, self.session, parent, params)
        carrier = tracing.inject(spans)
        if carrier:
            # A new params object: `params` stays as received, for the audit's capture.
            message["params"] = {**(params or {}), "_meta": {**(meta or {}), **carrier}}
        traceparent, tracestate = tracing.server_context(spans)
        call = CallRecord(
            request_id=request_id,
            method=method,
            target=target,
            direction=direction,
            started_at=time.time(),
            started=time.monotonic(),
            request_bytes=item.size,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        token = meta.get("progressToken") if meta else None
        if token is not None and direction == audit.CLIENT_TO_SERVER:
            self._progress[token] = request_id
        previous = table.get(request_id)
        if previous is not None and not previous.audited:
            log.warning("request id %r reused while in flight; the first is audited failed", request_id)
            self._finish(
                previous, audit.error_outcome(0, "request id reused", 0, status=audit.STATUS_FAILED), ERROR_ID_REUSED
            )
        table[request_id] = _Pending(call, spans, item.unanswered, token, params=params)
        return bool(carrier)

    def _note_initialize(self, params: dict[str, Any]) -> None:
        info = params.get("clientInfo")
        if isinstance(info, dict):
            self.session.client_name = _str_or_none(info.get("name"))
            self.session.client_version = _str_or_none(info.get("version"))
        self.session.protocol_version = _str_or_none(params.get("protocolVersion"))

    def _answered(self, table: dict[Any, _Pending], message: dict[str, Any], upstream: Side) -> _Pending | None:
        """Take the request a response or error answers off the open ones (None if unknown), before
        the answer is passed on: once passed, the request must never be answered again (upstream_gone)."""
        pending = table.pop(message["id"], None)
        if pending is None:
            return None
        if pending.progress_token is not None:
            self._progress.pop(pending.progress_token, None)
        result = message.get("result")
        if pending.call.method == "initialize" and isinstance(result, dict):
            # Before the client can send anything else upstream.
            version = _str_or_none(result.get("protocolVersion"))
            if version:
                self.session.protocol_version = version
                upstream.negotiated(version)
        return pending

    def _settle(self, pending: _Pending, item: Received) -> None:
        """Audit the request a response or error answered (`_answered`), unless the audit timeout
        already did."""
        if pending.audited:
            return  # a late response after the audit timeout: relayed, already audited
        message = item.message
        result = message.get("result")
        if isinstance(result, dict):
            outcome = audit.result_outcome(pending.call.method, result, item.size, self.policy)
            error_type = semconv.ERROR_TYPE_TOOL_ERROR if outcome.status == audit.STATUS_TOOL_ERROR else None
        else:
            error = message["error"]
            code = error.get("code")
            code = code if isinstance(code, int) else 0
            outcome = audit.error_outcome(code, str(error.get("message", "")), item.size)
            error_type = str(code)
        self._finish(pending, outcome, error_type)

    def _notification(
        self, item: Received, direction: str, senders_requests: dict[Any, _Pending]
    ) -> Callable[[], Awaitable[None]] | None:
        """Audit the notifications worth it; a cancellation also settles the request it names (a
        request is only ever cancelled by its sender). Returns the transport's hook to call once
        the cancellation is passed on, if the cancelled request has one."""
        message = item.message
        method: str = message["method"]
        if not audit.audited_notification(method):
            return None
        params: dict[str, Any] | None = message.get("params")
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
        meta = meta if isinstance(meta, Mapping) else {}
        self.submit(
            audit.notification_event(
                method,
                params,
                direction,
                item.size,
                time.time(),
                self.session,
                _str_or_none(meta.get("traceparent")) or "",
                _str_or_none(meta.get("tracestate")) or "",
            )
        )
        return unanswered

    def _related(self, message: dict[str, Any]) -> Any:
        """Which client request a message from the upstream belongs to, for an HTTP client's
        response streams: a progress notification names its request by token; anything else is
        taken to belong to the one client request in flight, if there is exactly one (neither
        stdio nor the SDK's HTTP client transport says more). None: it goes to the client's GET
        stream."""
        if message["method"] == "notifications/progress":
            params = message.get("params")
            return self._progress.get(params.get("progressToken")) if params else None
        if len(self.from_client) == 1:
            return next(iter(self.from_client))
        return None

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
    """Run `callback(*args)` once the side a message was just sent to has had its turn to write it.

    A pipe side has written it already; an HTTP side or the SDK's transport has woken the task that
    writes it, without yielding. The event loop runs what is ready in order, so a callback scheduled
    now runs after that task's step (the message written) and before this task's next, with no turn
    of the loop of its own. It runs even if this task is cancelled meanwhile: it settles a request
    already answered.
    """
    asyncio.get_running_loop().call_soon(callback, *args)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None

"""One Streamable HTTP session of a client, served by the proxy, as a relay side (side.py).

The server side of the MCP Streamable HTTP transport, for a relay: a POSTed request is handed to
the relay, and its HTTP response is decided by what the upstream sends for it first. The request's
own response, with nothing before it, goes back as one `application/json` body; anything else
before it (progress, logging, a sampling or elicitation request of the server's) opens a
`text/event-stream` and every message for the request goes out on it, its response last. The
transport lets the server choose per request, and most calls are answered plainly: a JSON body
costs the proxy and the client far less than an SSE stream, while calls that need a stream still
get one. (The SDK's server transport fixes the choice per session: with JSON, messages sent within
a call have no wire; with SSE, every call pays for a stream.)

Messages from the upstream that belong to no request in flight go out on the session's GET stream
(one per session), if the client opened one. POSTed notifications and responses are answered 202.
The proxy keeps no event store: a broken stream is not resumed (`Last-Event-ID` is not honoured).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, check_accept_headers
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from mcp_proxy import jsonrpc
from mcp_proxy.jsonrpc import INVALID_REQUEST, NotJsonRpc
from mcp_proxy.side import Received

log = logging.getLogger(__name__)

_JSON = b"application/json"
_SSE = b"text/event-stream"
_KEEPALIVE_S = 15.0  # a comment line on an idle GET stream, so intermediaries keep it open
_Item = tuple[bytes, bool]  # a message for a stream, and whether it is the response that ends it


class HttpSession:
    """A client's MCP session: the relay side facing it, and the handler of its HTTP requests."""

    def __init__(self, session_id: str, idle_s: float | None) -> None:
        self.session_id = session_id
        self._session_header = (MCP_SESSION_ID_HEADER.encode(), session_id.encode())
        self._inbox_in, self._inbox = anyio.create_memory_object_stream[Received](0)
        # Each request in flight: where the upstream's messages for it go, until its response.
        self._calls: dict[Any, MemoryObjectSendStream[_Item]] = {}
        self._get_stream: MemoryObjectSendStream[_Item] | None = None
        self.terminated = False
        # Cancelled (by its owner) when the session has had no HTTP request in flight for idle_s.
        self.idle_scope = anyio.CancelScope()
        self._idle_s = idle_s
        self._in_flight = 0
        self._opened = False  # by an initialize request, the only one that may come without a session id
        self._idle_from_now()

    # -- the relay's side ------------------------------------------------------------------------

    async def receive(self) -> AsyncIterator[Received | NotJsonRpc]:
        async with self._inbox:
            async for item in self._inbox:
                yield item

    async def send(self, message: dict[str, Any], *, raw: bytes | None = None, related_request_id: Any = None) -> None:
        data = raw if raw is not None else jsonrpc.encode(message)
        if "method" not in message:  # a response or an error: the last message of its request
            stream = self._calls.pop(message.get("id"), None)
            if stream is not None:
                stream.send_nowait((data, True))
                stream.close()
            return
        stream = self._calls.get(related_request_id) if related_request_id is not None else None
        stream = stream or self._get_stream
        if stream is None:
            log.debug("no stream open for a %s from the upstream; dropped", message.get("method"))
            return
        stream.send_nowait((data, False))

    def negotiated(self, protocol_version: str) -> None:
        pass  # checked by the upstream, whose transport it is

    # -- HTTP --------------------------------------------------------------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request of the session's."""
        self._in_flight += 1
        self.idle_scope.deadline = math.inf
        try:
            if self.terminated:
                await self._error(send, 404, "Not Found: Session has been terminated")
            elif scope["method"] == "POST":
                await self._post(scope, receive, send)
            elif scope["method"] == "GET":
                await self._get(scope, receive, send)
            elif scope["method"] == "DELETE":
                await self.terminate()
                await self._respond(send, 200, b"", _JSON)
            else:
                await self._error(send, 405, "Method Not Allowed")
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle_from_now()

    async def terminate(self) -> None:
        """End the session: the relay sees the client gone, open requests' streams end."""
        if self.terminated:
            return
        self.terminated = True
        self._inbox_in.close()
        for stream in [*self._calls.values(), *([self._get_stream] if self._get_stream else [])]:
            stream.close()
        self._calls.clear()
        self._get_stream = None

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        has_json, has_sse = check_accept_headers(Request(scope))
        if not (has_json and has_sse):
            await self._error(
                send, 406, "Not Acceptable: Client must accept both application/json and text/event-stream"
            )
            return
        headers = _headers(scope)
        if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            await self._error(send, 415, "Unsupported Media Type: Content-Type must be application/json")
            return
        body = await _body(receive)
        try:
            message = jsonrpc.decode(body)
        except NotJsonRpc as exc:
            await self._error(send, 400, exc.reason, exc.code, exc.request_id)
            return
        if not self._opened:
            if message.get("method") != "initialize" or "id" not in message:
                await self._error(send, 400, "Bad Request: Missing session ID")
                return
            self._opened = True
        # A body is passed on as it came when it is one line (a stdio upstream's framing).
        received = Received(message, len(body), raw=None if b"\n" in body else body, headers=headers)
        if jsonrpc.kind_of(message) != "request":
            await self._respond(send, 202, b"", _JSON)
            await self._hand_over(received)
            return
        request_id = message["id"]
        stream_in, stream = anyio.create_memory_object_stream[_Item](math.inf)
        self._calls[request_id] = stream_in

        async def unanswered() -> None:
            # The relay passed on a cancellation of this request: it will get no response.
            if self._calls.pop(request_id, None) is stream_in:
                stream_in.close()

        received.unanswered = unanswered
        if not await self._hand_over(received):
            self._calls.pop(request_id, None)
            await self._error(send, 404, "Not Found: Session has been terminated")
            return
        await self._answer(send, stream)

    async def _hand_over(self, received: Received) -> bool:
        try:
            await self._inbox_in.send(received)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async def _answer(self, send: Send, stream: MemoryObjectReceiveStream[_Item]) -> None:
        """The request's response as JSON if it comes first, else an SSE stream of all it gets (an
        empty one if the request ends unanswered: cancelled, or the session ended)."""
        with stream:
            try:
                first = await stream.receive()
            except anyio.EndOfStream:
                first = None
            if first is not None and first[1]:
                await self._respond(send, 200, first[0], _JSON)
                return
            await send({"type": "http.response.start", "status": 200, "headers": self._sse_headers()})
            if first is not None:
                await send({"type": "http.response.body", "body": _event(first[0]), "more_body": True})
                await _events(send, stream)
            await send({"type": "http.response.body", "body": b""})

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        _, has_sse = check_accept_headers(Request(scope))
        if not has_sse:
            await self._error(send, 406, "Not Acceptable: Client must accept text/event-stream")
            return
        if self._get_stream is not None:
            await self._error(send, 409, "Conflict: Only one SSE stream is allowed per session")
            return
        stream_in, stream = anyio.create_memory_object_stream[_Item](math.inf)
        self._get_stream = stream_in
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._sse_headers()})
            with stream:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
                    await _events(send, stream, keepalive_s=_KEEPALIVE_S)
                    tg.cancel_scope.cancel()
            await send({"type": "http.response.body", "body": b""})
        finally:
            if self._get_stream is stream_in:
                self._get_stream = None

    def _sse_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", _SSE),
            (b"cache-control", b"no-cache, no-transform"),
            (b"x-accel-buffering", b"no"),
            self._session_header,
        ]

    async def _respond(self, send: Send, status: int, body: bytes, content_type: bytes) -> None:
        headers = [(b"content-type", content_type), self._session_header]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _error(
        self, send: Send, status: int, reason: str, code: int = INVALID_REQUEST, request_id: Any = None
    ) -> None:
        await self._respond(send, status, jsonrpc.encode(jsonrpc.error(request_id, code, reason)), _JSON)

    def _idle_from_now(self) -> None:
        if self._idle_s:
            self.idle_scope.deadline = anyio.current_time() + self._idle_s


async def error_response(send: Send, status: int, reason: str) -> None:
    """An HTTP error with a JSON-RPC error body, for a request that reaches no session."""
    body = jsonrpc.encode(jsonrpc.error(None, INVALID_REQUEST, reason))
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", _JSON)]})
    await send({"type": "http.response.body", "body": body})


def _event(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"


def _headers(scope: Scope) -> Mapping[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _events(send: Send, stream: MemoryObjectReceiveStream[_Item], keepalive_s: float = math.inf) -> None:
    """Write the stream's messages as SSE events until its last (a response) or its end."""
    while True:
        with anyio.move_on_after(keepalive_s) as waited:
            try:
                data, last = await stream.receive()
            except anyio.EndOfStream:
                return
        if waited.cancelled_caught:
            await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
            continue
        await send({"type": "http.response.body", "body": _event(data), "more_body": True})
        if last:
            return


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()

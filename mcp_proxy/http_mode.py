"""HTTP mode: each configured server served as Streamable HTTP at /mcp/NAME, plus /healthz and /metrics.

Each MCP session a client opens (an `initialize` POST without a session id) gets the SDK's
`StreamableHTTPServerTransport` under a new session id and a connection of its own to the
upstream (a child process for a stdio server, a session of its own for an HTTP server); the relay
runs between the two until the client deletes the session, the session idles out
(SENTINEL_PROXY_SESSION_IDLE_S) or the upstream goes. The SDK's StreamableHTTPSessionManager
does the same bookkeeping but runs a `Server` (handlers) on each session, where the proxy runs
the relay, so the session table is kept here.

The principal of a session is derived from the bearer token of the request that opened it
(never the token itself); a client without one is `--principal`, if given. The proxy does not
check tokens: put it behind whatever authenticates your clients.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import anyio
import uvicorn
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, StreamableHTTPServerTransport
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from mcp_proxy import audit
from mcp_proxy.audit import SessionInfo
from mcp_proxy.relay import Submit
from mcp_proxy.sdk_side import SdkSide
from mcp_proxy.session import ProxyOptions, serve
from mcp_proxy.upstream import Upstream
from sentinel import metrics, settings

log = logging.getLogger(__name__)


class ServerEndpoint:
    """The ASGI app of one configured server: its MCP sessions, by session id."""

    def __init__(self, name: str, upstream: Upstream, options: ProxyOptions, submit: Submit) -> None:
        self.name = name
        self.upstream = upstream
        self.options = options
        self.submit = submit
        self.sessions: dict[str, StreamableHTTPServerTransport] = {}
        self.task_group: TaskGroup | None = None  # set by the app's lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        if session_id is not None:
            transport = self.sessions.get(session_id)
            if transport is None:
                await _error("Session not found", 404)(scope, receive, send)
                return
            await transport.handle_request(scope, receive, send)
            if transport.is_terminated:
                self.sessions.pop(session_id, None)
            return
        if scope["method"] != "POST":
            await _error("Bad Request: Missing session ID", 400)(scope, receive, send)
            return
        await self._open(scope, receive, send, principal_of(headers, self.options.principal))

    async def _open(self, scope: Scope, receive: Receive, send: Send, principal: str | None) -> None:
        """A new session: its transport, its relay task, then the request that opens it. A session
        whose opening request fails is dropped again (only an initialize can open one)."""
        assert self.task_group is not None, "the app's lifespan sets the task group"
        transport = StreamableHTTPServerTransport(
            mcp_session_id=uuid.uuid4().hex, idle_timeout=settings.PROXY_SESSION_IDLE_S or None
        )
        session_id = transport.mcp_session_id
        assert session_id is not None
        self.sessions[session_id] = transport
        session = SessionInfo(server=self.name, session_id=session_id, transport="http", principal=principal)
        opened = False
        try:
            await self.task_group.start(self._run, transport, session)
            status = await _answer_reporting_status(transport, scope, receive, send)
            opened = status is not None and status < 400
        finally:
            if not opened:
                await self._discard(transport)

    async def _run(
        self, transport: StreamableHTTPServerTransport, session: SessionInfo, *, task_status: TaskStatus[None]
    ) -> None:
        try:
            async with transport.connect() as (read, write):
                task_status.started()
                idle = transport.idle_scope or anyio.CancelScope()
                with idle:
                    await serve(SdkSide(read, write), self.upstream, session, self.options, self.submit)
        finally:
            await self._discard(transport)

    async def _discard(self, transport: StreamableHTTPServerTransport) -> None:
        if transport.mcp_session_id is not None:
            self.sessions.pop(transport.mcp_session_id, None)
        if not transport.is_terminated:
            with anyio.CancelScope(shield=True):
                await transport.terminate()


def principal_of(headers: Headers, configured: str | None) -> str | None:
    """Who calls: an id derived from the request's bearer token, else the configured principal."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return audit.principal_for_token(token.strip())
    return configured


def build_app(servers: dict[str, Upstream], options: ProxyOptions, submit: Submit) -> Starlette:
    endpoints = {name: ServerEndpoint(name, upstream, options, submit) for name, upstream in servers.items()}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            for endpoint in endpoints.values():
                endpoint.task_group = tg
            yield
            tg.cancel_scope.cancel()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "servers": sorted(endpoints)})

    async def metrics_view(_request: Request) -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    routes = [Route("/healthz", healthz), Route("/metrics", metrics_view)]
    routes += [
        Route(f"/mcp/{name}", endpoint, methods=["GET", "POST", "DELETE"]) for name, endpoint in endpoints.items()
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve_http(host: str, port: int, servers: dict[str, Upstream], options: ProxyOptions, submit: Submit) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handling), then close every session."""
    config = uvicorn.Config(
        build_app(servers, options, submit), host=host, port=port, log_level="warning", timeout_graceful_shutdown=5
    )
    uvicorn.Server(config).run()


def _error(message: str, status: int) -> Response:
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=message))
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True), status_code=status, media_type="application/json"
    )


async def _answer_reporting_status(
    transport: StreamableHTTPServerTransport, scope: Scope, receive: Receive, send: Send
) -> int | None:
    """Let the transport answer, and return the HTTP status it answered with."""
    status: int | None = None

    async def watch(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    await transport.handle_request(scope, receive, watch)
    return status

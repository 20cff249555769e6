"""HTTP mode: each configured server served as Streamable HTTP at /mcp/NAME, plus /healthz and /metrics.

Each MCP session a client opens (an `initialize` POST without a session id) gets an HttpSession
(http_session.py) under a new session id and a connection of its own to the upstream (a child
process for a stdio server, a session of its own for an HTTP server); the relay runs between the
two until the client deletes the session, the session idles out (SENTINEL_PROXY_SESSION_IDLE_S)
or the upstream goes.

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
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from mcp_proxy import audit
from mcp_proxy.audit import SessionInfo
from mcp_proxy.http_session import HttpSession, error_response
from mcp_proxy.relay import Submit
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
        self.sessions: dict[str, HttpSession] = {}
        self.task_group: TaskGroup | None = None  # set by the app's lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        if session_id is not None:
            session = self.sessions.get(session_id)
            if session is None:
                await error_response(send, 404, "Session not found")
                return
            await session.handle(scope, receive, send)
            if session.terminated:
                self.sessions.pop(session_id, None)
            return
        if scope["method"] != "POST":
            await error_response(send, 400, "Bad Request: Missing session ID")
            return
        await self._open(scope, receive, send, principal_of(headers, self.options.principal))

    async def _open(self, scope: Scope, receive: Receive, send: Send, principal: str | None) -> None:
        """A new session: its relay task, then the request that opens it. A session whose opening
        request fails is dropped again (only an initialize can open one)."""
        assert self.task_group is not None, "the app's lifespan sets the task group"
        client = HttpSession(uuid.uuid4().hex, settings.PROXY_SESSION_IDLE_S or None)
        self.sessions[client.session_id] = client
        session = SessionInfo(server=self.name, session_id=client.session_id, transport="http", principal=principal)
        opened = False
        try:
            await self.task_group.start(self._run, client, session)
            status = await _answer_reporting_status(client, scope, receive, send)
            opened = status is not None and status < 400
        finally:
            if not opened:
                await self._discard(client)

    async def _run(self, client: HttpSession, session: SessionInfo, *, task_status: TaskStatus[None]) -> None:
        try:
            task_status.started()
            with client.idle_scope:
                await serve(client, self.upstream, session, self.options, self.submit)
        finally:
            await self._discard(client)

    async def _discard(self, client: HttpSession) -> None:
        self.sessions.pop(client.session_id, None)
        await client.terminate()


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


async def _answer_reporting_status(client: HttpSession, scope: Scope, receive: Receive, send: Send) -> int | None:
    """Let the session answer, and return the HTTP status it answered with."""
    status: int | None = None

    async def watch(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    await client.handle(scope, receive, watch)
    return status

"""stdio mode: the proxy speaks MCP on its stdin/stdout and runs the upstream as its child.

Either side closing ends the session: the client closing stdin shuts the child down
(child_process.py: stdin closed, then terminated), the child exiting answers the client's open
requests with errors and closes stdout. SIGTERM and SIGINT end it the same way.
"""

from __future__ import annotations

import getpass
import os
import signal
import uuid

import anyio

from mcp_proxy.audit import SessionInfo
from mcp_proxy.relay import Submit
from mcp_proxy.session import ProxyOptions, serve
from mcp_proxy.stdio_transport import stdio_side
from mcp_proxy.upstream import StdioUpstream

_GENERIC_PARTS = frozenset({"index", "main", "cli", "dist", "build", "lib", "bin", "src", "server"})
_LAUNCHERS = frozenset({"npx", "uvx", "node", "python", "python3", "deno", "bunx", "pipx", "docker", "env"})


def default_name(upstream: StdioUpstream) -> str:
    """The server's name when --name is not given: the first word of the command line that is
    not a launcher or an option (`npx -y @scope/server-x` -> `server-x`)."""
    for word in (upstream.command, *upstream.args):
        if word.startswith("-"):
            continue
        # A script's path names its package: .../server-everything/dist/index.js -> server-everything.
        parts = [p.removesuffix(".js").removesuffix(".py") for p in word.split("/") if p]
        while parts and parts[-1] in _GENERIC_PARTS:
            parts.pop()
        if not parts or parts[-1] in _LAUNCHERS:
            continue
        return parts[-1].split("@")[0] or parts[-1]
    return os.path.basename(upstream.command)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


async def run_stdio(upstream: StdioUpstream, name: str, options: ProxyOptions, submit: Submit) -> None:
    session = SessionInfo(
        server=name, session_id=str(uuid.uuid4()), transport="stdio", principal=options.principal or os_user()
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signal, tg.cancel_scope)
        with stdio_side() as client:
            await serve(client, upstream, session, options, submit)
        tg.cancel_scope.cancel()


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return

"""`sentinel up --demo`: a real MCP client calls a tool of a real MCP server through the proxy, and
the call's stored row and whole trace are printed.

The client is the official `mcp` SDK's ClientSession, which opens a CLIENT span for each request
and carries its context in `params._meta`. The server is `@modelcontextprotocol/server-everything`
(npm), run by `sentinel proxy` as its stdio child, exactly as an MCP client's config would run it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from opentelemetry import trace

from sentinel import settings
from sentinel.telemetry import setup_tracing
from sentinel_local import processes
from sentinel_local.stack import mcp_peers

SERVER_NAME = "everything"
TOOL = "echo"
CLIENT_SERVICE = "mcp-client-demo"


def proxy_argv() -> list[str]:
    """What an MCP client's config runs: `sentinel proxy --name everything -- node server-everything stdio`."""
    sentinel = Path(sys.executable).with_name("sentinel")
    return [str(sentinel), "proxy", "--name", SERVER_NAME, "--", *mcp_peers.server_everything_argv("stdio")]


async def _call_tool(argv: list[str]) -> str:
    env = processes.process_env(SENTINEL_PROXY_DATA_DIR=str(settings.STACK_DIR / "proxy"))
    parameters = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool(TOOL, {"message": "hello from the Sentinel demo"})
    return " ".join(getattr(block, "text", "") for block in result.content)


def run() -> int:
    """Call the tool, then print the row of its `tool_call` event and its trace; 1 if either is missing."""
    from sentinel_cli.commands.emit import flush_tracing
    from sentinel_cli.commands.trace import print_trace
    from workers.clickhouse.client import new_client
    from workers.clickhouse.queries import find_events_by_trace

    setup_tracing(CLIENT_SERVICE)
    argv = proxy_argv()
    print(f"\nMCP client -> {' '.join(argv)}")
    # The SDK's own span for the request becomes this span's child, so the trace id is known here.
    with trace.get_tracer(__name__).start_as_current_span(f"demo: call {TOOL}") as span:
        answer = anyio.run(_call_tool, argv)
    trace_id = format(span.get_span_context().trace_id, "032x")
    flush_tracing()
    print(f"tools/call {TOOL} -> {answer!r}  (trace {trace_id})")
    client = new_client()
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        rows = [row for row in find_events_by_trace(client, trace_id) if row.event_type == "tool_call"]
        if rows:
            return print_trace(rows[0].event_id, wait_s=max(5.0, deadline - time.monotonic()))
        time.sleep(0.25)
    print(f"no tool_call row with trace {trace_id} reached ClickHouse within 60 s", file=sys.stderr)
    return 1

"""Helpers for the tests against real MCP peers: server-everything (npm) behind the proxy, and the
official `mcp` SDK's ClientSession as the client, with sampling, elicitation and roots callbacks."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from sentinel import settings
from sentinel_local.stack import mcp_peers

SAMPLED_TEXT = "a sampled answer from the test client"
ROOT_URI = "file:///tmp/sentinel-proxy-test"

# Tools whose schema defaults do not suit a test: the long operation is shortened, the gzip
# tool is given a data URI (its default fetches a URL from the internet).
ARGUMENTS = {
    "trigger-long-running-operation": {"duration": 0.3, "steps": 3},
    "gzip-file-as-resource": {"name": "hello.txt.gz", "data": "data:text/plain;base64,aGVsbG8gd29ybGQ="},
    "trigger-url-elicitation": {"url": "https://example.com/consent"},
}


def arguments_for(tool: types.Tool) -> dict[str, Any]:
    """Arguments a tool accepts: the overrides above, else each required property from its schema."""
    if tool.name in ARGUMENTS:
        return dict(ARGUMENTS[tool.name])
    schema = tool.input_schema or {}
    properties = schema.get("properties", {})
    arguments: dict[str, Any] = {}
    for name in schema.get("required", []):
        spec = properties.get(name, {})
        if "enum" in spec:
            arguments[name] = spec["enum"][0]
        elif spec.get("type") in ("number", "integer"):
            arguments[name] = 2
        elif spec.get("type") == "boolean":
            arguments[name] = False
        else:
            arguments[name] = f"test {name}"
    return arguments


async def sampling(_context: Any, _params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=SAMPLED_TEXT), model="test-model"
    )


async def elicitation(_context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada", "email": "ada@example.com"})


async def roots(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=ROOT_URI, name="test root")])


def peer_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a proxy (and, for a fair comparison, of the direct server too)."""
    env = dict(os.environ)
    env.update(
        {
            "SENTINEL_PROXY_DATA_DIR": str(tmp / "proxy-data"),
            "OTEL_TRACES_EXPORTER": "none",
            "SENTINEL_INGEST_URL": "http://127.0.0.1:9",  # nothing listens: events go to the spool
        }
    )
    env.update(extra)
    return env


def proxy_argv(*options: str, upstream: list[str]) -> list[str]:
    return [sys.executable, "-m", "mcp_proxy", *options, "--", *upstream]


@asynccontextmanager
async def session_over_stdio(argv: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    parameters = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(settings.REPO_ROOT))
    async with stdio_client(parameters) as (read, write), client_session(read, write) as session:
        yield session


@asynccontextmanager
async def session_over_http(url: str) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url) as (read, write), client_session(read, write) as session:
        yield session


@asynccontextmanager
async def client_session(read: Any, write: Any) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession with the test's sampling, elicitation and roots callbacks."""
    async with ClientSession(
        read,
        write,
        read_timeout_seconds=60,
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
    ) as session:
        await session.initialize()
        yield session


def everything_argv(mode: str = "stdio") -> list[str]:
    """server-everything's command line; a test fails here, with the reason, without node or npm."""
    return mcp_peers.server_everything_argv(mode)


def wait_for_http(url: str, process: Any, timeout_s: float = 30.0) -> None:
    """Until `url` answers (any status); fails with the process's output if it exits first."""
    import time

    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"{process.args} exited with {process.returncode}:\n{output}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


def proxy_argv_http(address: str, config: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "mcp_proxy", "--http", address, "--config", config, *options]


async def what_a_client_sees(session: ClientSession) -> dict[str, Any]:
    """A server-everything session as its client sees it: its listings and every tool's result."""
    seen: dict[str, Any] = {}
    tools = (await session.list_tools()).tools
    seen["tools/list"] = [tool.model_dump(mode="json") for tool in tools]
    seen["prompts/list"] = (await session.list_prompts()).model_dump(mode="json")
    seen["resources/list"] = (await session.list_resources()).model_dump(mode="json")
    for tool in tools:
        try:
            seen[tool.name] = (await session.call_tool(tool.name, arguments_for(tool))).model_dump(mode="json")
        except MCPError as exc:
            seen[tool.name] = {"error": exc.error.model_dump(mode="json")}
    return seen

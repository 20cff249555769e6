"""The upstream MCP server: what the configuration says about it, and a connection to it.

An upstream is started as a child over stdio (child_process.py) or reached over Streamable HTTP
(the SDK's `streamable_http_client`). Either way the relay gets a side (side.py) to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from mcp_proxy.child_process import child_side
from mcp_proxy.side import Side

# Never handed to a server the proxy starts: the proxy's own credential for ingest.
_PROXY_ONLY_ENV = ("SENTINEL_PROXY_INGEST_TOKEN",)


@dataclass(frozen=True)
class StdioUpstream:
    command: str
    args: tuple[str, ...] = ()
    # None: the proxy's whole environment (a stdio proxy stands in for the server in a client's
    # config, so the environment the client gave it is the server's). A dict: the SDK's default
    # environment plus these, as MCP clients start servers from an mcpServers entry.
    env: Mapping[str, str] | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class HttpUpstream:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


Upstream = StdioUpstream | HttpUpstream


class ConfigError(ValueError):
    pass


def load_config(path: Path) -> dict[str, Upstream]:
    """The servers of an `mcpServers` JSON file, by name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_config(data, source=str(path))


def parse_config(data: Any, *, source: str = "config") -> dict[str, Upstream]:
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict) or not servers:
        raise ConfigError(f"{source}: expected an object with a non-empty `mcpServers` object")
    parsed: dict[str, Upstream] = {}
    for name, entry in servers.items():
        if not isinstance(entry, dict) or not name or "/" in name:
            raise ConfigError(f"{source}: server {name!r} must be an object, named without '/'")
        if isinstance(entry.get("url"), str):
            headers = entry.get("headers") or {}
            if not isinstance(headers, dict):
                raise ConfigError(f"{source}: {name}.headers must be an object")
            parsed[name] = HttpUpstream(entry["url"], {str(k): str(v) for k, v in headers.items()})
        elif isinstance(entry.get("command"), str):
            args = entry.get("args") or []
            env = entry.get("env") or {}
            if not isinstance(args, list) or not isinstance(env, dict):
                raise ConfigError(f"{source}: {name}.args must be a list and {name}.env an object")
            parsed[name] = StdioUpstream(
                entry["command"],
                tuple(str(a) for a in args),
                {str(k): str(v) for k, v in env.items()},
                entry.get("cwd"),
            )
        else:
            raise ConfigError(f"{source}: server {name!r} needs a `command` or a `url`")
    return parsed


def child_environment(upstream: StdioUpstream) -> dict[str, str]:
    """The child's environment: a configured server's is the SDK's default environment (what MCP
    clients start servers with) plus its `env`; a stdio proxy's child gets the proxy's."""
    if upstream.env is not None:
        # Imported here: the SDK's client package takes most of a second to import, which a stdio
        # proxy, started by its client on every connection, does not need.
        from mcp.client.stdio import get_default_environment

        return get_default_environment() | dict(upstream.env)
    return {k: v for k, v in os.environ.items() if k not in _PROXY_ONLY_ENV}


@asynccontextmanager
async def connect(upstream: Upstream) -> AsyncIterator[Side]:
    """A side to the upstream; leaving the context shuts it down.

    Raises OSError when a stdio server cannot be started.
    """
    if isinstance(upstream, StdioUpstream):
        async with child_side(upstream.command, upstream.args, child_environment(upstream), upstream.cwd) as side:
            yield side
        return
    from mcp.client.streamable_http import streamable_http_client

    from mcp_proxy.sdk_side import SdkSide

    if upstream.headers:
        # The SDK's defaults (30 s, and 300 s to read a response stream) with the configured headers.
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=dict(upstream.headers), timeout=timeout) as client,
            streamable_http_client(upstream.url, http_client=client) as (read, write),
        ):
            yield SdkSide(read, write, stamp_protocol_version=True)
        return
    async with streamable_http_client(upstream.url) as (read, write):
        yield SdkSide(read, write, stamp_protocol_version=True)

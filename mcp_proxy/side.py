"""One end of the relay: the client's connection or the upstream's, whatever its transport.

The relay reads `Received` messages from a side and sends it JSON-RPC messages as dicts. Two
kinds of side exist: a newline-delimited stream (lines.py: the proxy's own stdio, a stdio
server's pipes), which passes a message's bytes on untouched when the relay did not change it;
and the SDK's Streamable HTTP transports (sdk_side.py), which carry per-message metadata the relay
fills in (which request a server message belongs to, the negotiated protocol version).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mcp_proxy.jsonrpc import NotJsonRpc


@dataclass(slots=True)
class Received:
    message: dict[str, Any]
    size: int  # bytes on the wire (as the transport wrote or would write it)
    raw: bytes | None = None  # the bytes it came as, where the transport has them
    # The HTTP request that carried it (its trace headers are a context the request may continue).
    headers: Mapping[str, str] | None = None
    # The HTTP server transport's hook that ends a request's response stream when the request will
    # get no response (it was cancelled); None elsewhere.
    unanswered: Callable[[], Awaitable[None]] | None = None


class Side(Protocol):
    def receive(self) -> AsyncIterator[Received | NotJsonRpc]:
        """Messages until the side closes; a NotJsonRpc for a line or body that is not one."""
        ...

    async def send(self, message: dict[str, Any], *, raw: bytes | None = None, related_request_id: Any = None) -> None:
        """Pass `message` on (as `raw`, its bytes as received, when given). `related_request_id`:
        the request of the peer's that a message belongs to. Raises anyio.BrokenResourceError or
        anyio.ClosedResourceError once the side is gone."""
        ...

    def negotiated(self, protocol_version: str) -> None:
        """The protocol version the session agreed on (the HTTP client transport stamps it on
        every later message)."""
        ...

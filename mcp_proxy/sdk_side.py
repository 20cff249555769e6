"""A relay side over the SDK's Streamable HTTP transports (server side facing an HTTP client, client
side to an HTTP upstream): their (read, write) streams of `SessionMessage`s.

The SDK's HTTP transports speak in pydantic models and per-message metadata; the relay speaks in
dicts (jsonrpc.py). This side converts between the two and carries the metadata: the HTTP request
and the "no response coming" hook of a received request, which request of the client's a server
message belongs to (the response stream it goes out on), and the negotiated protocol version the
client transport sends as a header.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from mcp.shared.message import ClientMessageMetadata, ServerMessageMetadata, SessionMessage
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError
from starlette.requests import Request

from mcp_proxy.jsonrpc import NotJsonRpc
from mcp_proxy.side import Received

log = logging.getLogger(__name__)

_PROTOCOL_VERSION_HEADER = "mcp-protocol-version"


class SdkSide:
    """`stamp_protocol_version`: the side is the HTTP client transport to an upstream, which wants
    the negotiated version on each message (the MCP-Protocol-Version header)."""

    def __init__(
        self,
        read: Any,  # the transport's stream of SessionMessage | Exception
        write: Any,  # the transport's stream taking SessionMessage
        *,
        stamp_protocol_version: bool = False,
    ) -> None:
        self._read = read
        self._write = write
        self._stamp = stamp_protocol_version
        self._client_metadata: ClientMessageMetadata | None = None

    async def receive(self) -> AsyncIterator[Received | NotJsonRpc]:
        async with self._read:
            async for item in self._read:
                if isinstance(item, Exception):
                    # The transport could not parse a body; it has answered its sender where it could.
                    log.warning("unreadable message: %s", item)
                    continue
                message = jsonrpc_message_adapter.dump_python(item.message, by_alias=True, exclude_unset=True)
                received = Received(message, len(orjson.dumps(message)))
                metadata = item.metadata
                if isinstance(metadata, ServerMessageMetadata):
                    received.unanswered = metadata.on_request_unanswered
                    if isinstance(metadata.request_context, Request):
                        received.headers = metadata.request_context.headers
                yield received

    async def send(self, message: dict[str, Any], *, raw: bytes | None = None, related_request_id: Any = None) -> None:
        try:
            model = jsonrpc_message_adapter.validate_python(message, by_name=False)
        except ValidationError as exc:
            # A stdio server's line that is JSON-RPC in shape but not in detail: the SDK's transport
            # could not write it.
            log.warning("a message the HTTP transport cannot carry was dropped: %s", exc)
            return
        metadata: ServerMessageMetadata | ClientMessageMetadata | None = self._client_metadata
        if related_request_id is not None:
            metadata = ServerMessageMetadata(related_request_id=related_request_id)
        await self._write.send(SessionMessage(model, metadata=metadata))

    def negotiated(self, protocol_version: str) -> None:
        if self._stamp:
            self._client_metadata = ClientMessageMetadata(headers={_PROTOCOL_VERSION_HEADER: protocol_version})

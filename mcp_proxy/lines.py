"""A relay side over a newline-delimited JSON-RPC byte stream: the MCP stdio transport's framing.

One message per line, UTF-8, no embedded newlines (the MCP specification's stdio transport). A
line the relay does not change goes out as the bytes it came in as, so a client sees the server's
bytes exactly; only a request with trace context added is written again (jsonrpc.encode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from mcp_proxy import jsonrpc
from mcp_proxy.jsonrpc import NotJsonRpc
from mcp_proxy.side import Received

Receive = Callable[[], Awaitable[bytes]]  # the next chunk; raises anyio.EndOfStream at the end
Write = Callable[[bytes], Awaitable[None]]

_CHUNK = 1 << 16


async def split_lines(receive: Receive) -> AsyncIterator[bytes]:
    """The non-blank lines of the stream, without their newline; a last line without one too."""
    pending = b""
    while True:
        try:
            chunk = await receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            break
        if b"\n" not in chunk:
            pending += chunk
            continue
        *lines, rest = (pending + chunk).split(b"\n")
        pending = rest
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


class LineSide:
    """A relay side (side.Side) over a byte stream's `receive` and `write`."""

    def __init__(self, receive: Receive, write: Write) -> None:
        self._receive = receive
        self._write = write
        # Both relay directions can write to one side (the client gets the upstream's messages and
        # the proxy's own errors); a line must go out whole before the next starts.
        self._lock = asyncio.Lock()

    async def receive(self) -> AsyncIterator[Received | NotJsonRpc]:
        async for line in split_lines(self._receive):
            try:
                yield Received(jsonrpc.decode(line), len(line) + 1, raw=line)
            except NotJsonRpc as exc:
                yield exc

    async def send(self, message: dict[str, Any], *, raw: bytes | None = None, related_request_id: Any = None) -> None:
        data = (raw if raw is not None else jsonrpc.encode(message)) + b"\n"
        async with self._lock:
            await self._write(data)

    def negotiated(self, protocol_version: str) -> None:
        pass  # stdio carries no per-message protocol header


def pipe_side(read_fd: int, write_fd: int) -> LineSide:
    """A side over two pipe descriptors, read and written from the event loop: each read or write
    is tried at once and waits on the loop (`anyio.wait_readable`/`wait_writable`) only when it
    would block. The caller sets them non-blocking (a regular file never blocks and needs not)."""

    async def receive() -> bytes:
        while True:
            try:
                chunk = os.read(read_fd, _CHUNK)
            except BlockingIOError:
                await anyio.wait_readable(read_fd)
                continue
            if not chunk:
                raise anyio.EndOfStream
            return chunk

    async def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(write_fd, view)
            except BlockingIOError:
                await anyio.wait_writable(write_fd)
                continue
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise anyio.BrokenResourceError from exc  # the reader is gone
            view = view[written:]

    return LineSide(receive, write)

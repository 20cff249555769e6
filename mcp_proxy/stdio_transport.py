"""The proxy's own stdin/stdout as MCP transport streams (newline-delimited JSON-RPC).

The SDK's `stdio_server` reads stdin on a worker thread that cannot be cancelled: when the
upstream exits, the proxy could not end until its client happened to send another line or close
stdin. Here both pipes are read and written from the event loop (non-blocking descriptors,
`anyio.wait_readable`/`wait_writable`), so closing either side ends the other at once. Messages
are parsed and written exactly as the SDK's stdio transports do (`jsonrpc_message_adapter`,
`by_alias`, `exclude_unset`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

_CHUNK = 1 << 16


@asynccontextmanager
async def stdio_streams(
    stdin_fd: int = 0, stdout_fd: int = 1
) -> AsyncIterator[
    tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]
]:
    """(read, write) streams like the SDK transports': the read stream yields a SessionMessage
    per line (or the parse error), and ends at EOF; messages sent to the write stream go out one
    per line. Leaving the context stops both and restores the descriptors' blocking mode."""
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    restore = [(fd, os.get_blocking(fd)) for fd in (stdin_fd, stdout_fd)]
    pollable = {fd: _pollable(fd) for fd in (stdin_fd, stdout_fd)}
    for fd, ok in pollable.items():
        if ok:
            os.set_blocking(fd, False)

    async def reader() -> None:
        async with read_writer:
            async for line in _lines(stdin_fd, pollable[stdin_fd]):
                try:
                    item: SessionMessage | Exception = SessionMessage(
                        jsonrpc_message_adapter.validate_json(line, by_name=False)
                    )
                except ValidationError as exc:
                    item = exc
                try:
                    await read_writer.send(item)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return

    written = anyio.Event()

    async def writer() -> None:
        try:
            async with write_reader:
                async for message in write_reader:
                    data = jsonrpc_message_adapter.dump_json(message.message, by_alias=True, exclude_unset=True)
                    try:
                        await _write_all(stdout_fd, data + b"\n")
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client is gone; the read side sees EOF too
        finally:
            written.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            try:
                yield read_stream, write_stream
            finally:
                # Let what was already sent go out, then stop reading.
                write_stream.close()
                with anyio.move_on_after(1.0, shield=True):
                    await written.wait()
                tg.cancel_scope.cancel()
    finally:
        for fd, blocking in restore:
            with suppress(OSError):
                os.set_blocking(fd, blocking)


def _pollable(fd: int) -> bool:
    """Pipes, sockets and terminals can wait on the event loop; a regular file never blocks."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


async def _lines(fd: int, pollable: bool) -> AsyncIterator[bytes]:
    pending = b""
    while True:
        if pollable:
            await anyio.wait_readable(fd)
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            continue
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        view = view[written:]

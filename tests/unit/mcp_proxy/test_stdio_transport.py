"""The proxy's stdin/stdout transport over real pipes."""

from __future__ import annotations

import json
import os

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest


def test_lines_in_messages_out_and_eof_ends_the_read_stream() -> None:
    from mcp_proxy.stdio_transport import stdio_streams

    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    request = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    os.write(stdin_write, (json.dumps(request) + "\n\nnot json\n").encode())
    os.close(stdin_write)

    async def main() -> list[object]:
        seen: list[object] = []
        with anyio.fail_after(5):
            await _exchange(seen)
        return seen

    async def _exchange(seen: list[object]) -> None:
        async with stdio_streams(stdin_read, stdout_write) as (read, write):
            async for item in read:
                seen.append(item)
            await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")))

    seen = anyio.run(main)
    assert isinstance(seen[0], SessionMessage) and seen[0].message == JSONRPCRequest(**request)
    assert isinstance(seen[1], Exception)  # the line that is not JSON-RPC, as the SDK's transports report it
    assert len(seen) == 2
    os.close(stdout_write)
    with os.fdopen(stdout_read, "rb") as out:
        assert json.loads(out.readline()) == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    os.close(stdin_read)

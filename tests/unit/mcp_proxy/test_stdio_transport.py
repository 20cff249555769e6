"""The proxy's stdin/stdout side over real pipes."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import orjson

from mcp_proxy.jsonrpc import PARSE_ERROR, NotJsonRpc
from mcp_proxy.side import Received
from mcp_proxy.stdio_transport import stdio_side


def test_lines_in_messages_out_byte_for_byte_and_eof_ends_the_reading() -> None:
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    # Spacing and key order a re-encoder would change.
    request = b'{ "jsonrpc" : "2.0", "method": "ping",  "id": 1 }'
    os.write(stdin_write, request + b"\n\nnot json\n")
    os.close(stdin_write)
    seen: list[Received | NotJsonRpc] = []

    async def main() -> None:
        with anyio.fail_after(5), stdio_side(stdin_read, stdout_write) as side:
            async for item in side.receive():
                seen.append(item)
            assert isinstance(seen[0], Received)
            await side.send(seen[0].message, raw=seen[0].raw)
            await side.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    anyio.run(main)
    first, second = seen
    assert isinstance(first, Received) and first.message == {"jsonrpc": "2.0", "method": "ping", "id": 1}
    assert first.size == len(request) + 1
    assert isinstance(second, NotJsonRpc) and second.code == PARSE_ERROR
    os.close(stdout_write)
    with os.fdopen(stdout_read, "rb") as out:
        assert out.readline() == request + b"\n"  # passed on as it came
        assert orjson.loads(out.readline()) == {"jsonrpc": "2.0", "method": "notifications/initialized"}
    os.close(stdin_read)


def test_stdin_from_a_regular_file_is_read_too(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
    stdout_read, stdout_write = os.pipe()
    seen: list[Received | NotJsonRpc] = []

    async def main() -> None:
        with requests.open("rb") as stdin, anyio.fail_after(5), stdio_side(stdin.fileno(), stdout_write) as side:
            seen.extend([item async for item in side.receive()])

    anyio.run(main)
    assert [item.message["id"] for item in seen if isinstance(item, Received)] == [1]
    os.close(stdout_read)
    os.close(stdout_write)

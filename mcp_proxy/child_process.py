"""A stdio MCP server run as the proxy's child, as a relay side over its stdin/stdout (lines.py).

Started and stopped as the SDK's `stdio_client` does it: the environment upstream.py gives, a
process group of its own, the child's stderr the proxy's. To stop it, its stdin
is closed and it gets a grace period to exit, then its process group gets SIGTERM and, after
another, SIGKILL. The pipes are read and written here rather than through `stdio_client`, which
parses every line into the SDK's models and writes it again: the relay passes lines on as they
are (jsonrpc.py says why).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio

from mcp_proxy.lines import LineSide, pipe_side

log = logging.getLogger(__name__)

# The SDK's stdio_client's: how long a server has to exit once its stdin is closed, then after SIGTERM.
GRACE_S = 2.0
KILL_AFTER_S = 2.0
_POLL_S = 0.02


@asynccontextmanager
async def child_side(
    command: str, args: tuple[str, ...], env: dict[str, str], cwd: str | None
) -> AsyncIterator[LineSide]:
    """Start `command args` with environment `env` and relay over its pipes; leaving the context
    stops it. Raises OSError when the command cannot be started."""
    child = subprocess.Popen(
        [command, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the proxy's own: the server's logs reach whoever reads the proxy's
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    assert child.stdin is not None and child.stdout is not None
    for pipe in (child.stdin, child.stdout):
        os.set_blocking(pipe.fileno(), False)
    try:
        yield pipe_side(child.stdout.fileno(), child.stdin.fileno())
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(child)


async def _stop(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None and child.stdout is not None
    with suppress(OSError):
        child.stdin.close()
    if not await _exited_within(child, GRACE_S):
        # The whole group: `npx server` runs the server as a grandchild. The leader's pid is the
        # group's id (start_new_session); getpgid would fail once the leader is reaped.
        for signum, wait_s in ((signal.SIGTERM, KILL_AFTER_S), (signal.SIGKILL, GRACE_S)):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signum)
            if await _exited_within(child, wait_s):
                break
        else:
            log.warning("MCP server process %d is still alive after SIGKILL; leaving it", child.pid)
    child.stdout.close()


async def _exited_within(child: subprocess.Popen[bytes], timeout_s: float) -> bool:
    with anyio.move_on_after(timeout_s):
        while child.poll() is None:
            await anyio.sleep(_POLL_S)
        return True
    return False

"""The proxy's own stdin/stdout as a relay side (newline-delimited JSON-RPC, lines.py).

Both pipes are read and written from the event loop (lines.pipe_side), never from a worker thread:
a thread blocked reading stdin cannot be cancelled, so when the upstream exits the proxy could not
end until its client sent another line or closed stdin. Here closing either side ends the other at
once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from mcp_proxy.lines import LineSide, pipe_side


@contextmanager
def stdio_side(stdin_fd: int = 0, stdout_fd: int = 1) -> Iterator[LineSide]:
    """A side reading `stdin_fd` and writing `stdout_fd`; leaving the context restores the
    descriptors' blocking mode."""
    restore = [(fd, os.get_blocking(fd)) for fd in (stdin_fd, stdout_fd)]
    for fd in (stdin_fd, stdout_fd):
        if _pollable(fd):
            os.set_blocking(fd, False)
    try:
        yield pipe_side(stdin_fd, stdout_fd)
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

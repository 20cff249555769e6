"""Child processes run as one unit: stopped together on SIGTERM/SIGINT, or when any of them exits.

Ingest as it runs locally (nginx and the WSGI servers, `sentinel_local/ingest_serve.py`) and the
bridge's consumers (`workers/bridge/supervisor.py`) each run under a parent that the stack or k8s
supervises as one process. A child that exits on its own means the unit is broken: the others are
stopped and the parent reports the failure, so whatever supervises it sees the whole unit down and
restarts it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)


def run_together(
    children: Sequence[subprocess.Popen[bytes]], *, what: str, stop_timeout_s: float | None = None
) -> bool:
    """Wait for SIGTERM/SIGINT or for any child to exit, then SIGTERM the others and wait for them.

    With `stop_timeout_s`, children still running that long after the stop are killed; without,
    each is waited for (a bridge consumer settles its in-flight chunks before it exits). Returns
    whether a child exited on its own (the unit failed), and logs which one, as `what` PID.
    """
    stopping = False

    def stop(_signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        # Once: a second SIGTERM makes some servers skip their graceful shutdown.
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    gone = None if stopping else next(child for child in children if child.returncode is not None)
    if gone is not None:
        log.error("%s %d exited with %s; stopping the others", what, gone.pid, gone.returncode)
    stop()
    deadline = None if stop_timeout_s is None else time.monotonic() + stop_timeout_s
    for child in children:
        try:
            child.wait(None if deadline is None else max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return gone is not None

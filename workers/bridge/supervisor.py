"""Several bridge consumers under one `python -m workers.bridge`: start them, stop them together.

Each consumer is its own process (`python -m workers.bridge --consumer`) in the bridge's consumer
group, so Kafka gives each some of the partitions, and their Python loops run on separate cores.
The parent serves the metrics of all of them (prometheus_client's multiprocess mode) and passes
SIGTERM/SIGINT on, so each consumer settles its in-flight chunks and commits before it exits. A
consumer that exits on its own stops the others and the parent exits 1: whatever runs the bridge
(k8s, `sentinel up`) then restarts it whole, as it would a single consumer. A consumer whose parent
dies is sent SIGTERM by the kernel (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile

from sentinel import metrics, settings
from sentinel.process_group import run_together

log = logging.getLogger(__name__)

CONSUMER_FLAG = "--consumer"
_PR_SET_PDEATHSIG = 1


def supervise(count: int) -> int:
    """Run `count` consumers until a signal stops them (0) or one of them exits on its own (1)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before the consumers start: they write their metrics there, and serve() merges them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sentinel-bridge-metrics-")
    metrics.serve(settings.BRIDGE_METRICS_PORT)
    parent = str(os.getpid())
    children = [subprocess.Popen([sys.executable, "-m", "workers.bridge", CONSUMER_FLAG, parent]) for _ in range(count)]
    log.info("bridge running %d consumers: pids %s", count, [c.pid for c in children])
    failed = run_together(children, what="bridge consumer")
    for child in children:
        metrics.mark_process_dead(child.pid)
    return 1 if failed or any(child.returncode != 0 for child in children) else 0


def die_with_parent(parent_pid: int) -> None:
    """In a consumer: have the kernel send SIGTERM when the supervising parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)

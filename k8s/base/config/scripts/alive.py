"""Exec probe for a Sentinel process that serves no port (bridge, worker, beat).

Usage: python alive.py WORD. Passes when the container's PID 1 is running (not stopped, traced
or a zombie) and its command line contains WORD. A main process that exits already restarts the
container; this catches one that is stopped, or a container started with the wrong command.
It checks nothing outside the pod, so a Kafka or broker outage never restarts these processes.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(expected: str) -> int:
    stat = Path("/proc/1/stat").read_text()
    state = stat.rsplit(")", 1)[1].split()[0]
    cmdline = Path("/proc/1/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if state in {"T", "t", "Z", "X"}:
        print(f"pid 1 is in state {state}")
        return 1
    if expected not in cmdline:
        print(f"pid 1 runs {cmdline!r}, not {expected!r}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

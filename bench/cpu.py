"""Where the CPU went during a scenario: CPU seconds per role, from /proc/<pid>/stat of each process tree.

On a 2-core machine that also runs Kafka, ClickHouse, RabbitMQ, Redis and Jaeger, a throughput figure
alone does not say which stage limits it; CPU seconds per 1,000 events per role do. Roles are the
pipeline processes (ingest, bridge, worker) and the services (kafka, clickhouse, rabbitmq, redis,
jaeger), each with the processes below it. A process that exits during the scenario is missed
(its time moves to its parent only once reaped), which the pipeline's long-lived trees avoid.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bench.rss import PROC, per_process

_TICKS = os.sysconf("SC_CLK_TCK")
# What `CpuMeter.since()` reports beside the roles: the machine's figures, not a role's CPU.
MACHINE_FIGURES = ("wall_s", "all_cores_s", "steal_s")


def process_cpu_s(pid: int, proc: Path = PROC) -> float | None:
    """utime + stime of `pid` in seconds, or None if it is gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_s(root: int, proc: Path = PROC) -> dict[int, float]:
    return per_process(root, process_cpu_s, proc)


class CpuMeter:
    """Snapshot CPU per role before a scenario; `since()` gives seconds used per role after it."""

    def __init__(self, roots: Callable[[], dict[str, int | None]], proc: Path = PROC) -> None:
        self._roots = roots
        self._proc = proc
        self._start: dict[str, dict[int, float]] = {}
        self._wall = 0.0
        self._steal = 0.0

    def start(self) -> None:
        self._start = self._snapshot()
        self._wall = _uptime(self._proc)
        self._steal = _steal_s(self._proc)

    def since(self) -> dict[str, float]:
        """CPU seconds per role since `start()`, plus `wall_s` and `all_cores_s` (wall x cores) for
        scale, and `steal_s`: time the hypervisor ran something else while this machine's cores
        wanted to run (all cores together). The host's speed drifts within minutes here; steal is
        the part of that drift the guest can see."""
        now = self._snapshot()
        out: dict[str, float] = {}
        for role, pids in now.items():
            before = self._start.get(role, {})
            out[role] = round(sum(used - before.get(pid, 0.0) for pid, used in pids.items()), 2)
        wall = _uptime(self._proc) - self._wall
        out["wall_s"] = round(wall, 2)
        out["all_cores_s"] = round(wall * (os.cpu_count() or 1), 2)
        out["steal_s"] = round(_steal_s(self._proc) - self._steal, 2)
        return out

    def _snapshot(self) -> dict[str, dict[int, float]]:
        return {role: tree_cpu_s(root, self._proc) for role, root in self._roots().items() if root is not None}


def _uptime(proc: Path) -> float:
    try:
        return float((proc / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def _steal_s(proc: Path) -> float:
    """Steal time of all cores since boot, from the `cpu` line of /proc/stat (its 8th value)."""
    try:
        fields = (proc / "stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / _TICKS if fields[0] == "cpu" else 0.0
    except (OSError, ValueError, IndexError):
        return 0.0

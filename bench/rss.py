"""Peak resident memory of each pipeline role, from `VmHWM` in /proc/<pid>/status.

A role is a process tree: ingest is nginx and the granian server with its workers, the worker is the Celery
main process and its prefork children, the bridge is its supervisor and consumers. VmHWM is the kernel's high-water
mark of a process's RSS over its whole life, so sampling it now and then (after every scenario)
misses nothing of a process that is still alive when sampled. The harness restarts the roles for
each tracing configuration; `PeakRss` keeps, per role, the largest single process seen and the
largest sum over one tree (an upper bound of the tree's peak: its processes need not peak at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROC = Path("/proc")


def vm_hwm_kb(pid: int, proc: Path = PROC) -> int | None:
    """VmHWM of `pid` in kB, or None if the process is gone (or has no memory, like a zombie)."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def descendants(root: int, proc: Path = PROC) -> list[int]:
    """`root` and every process below it, from the parent pids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: fields restart after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def per_process(root: int, measure: Callable[[int, Path], T | None], proc: Path = PROC) -> dict[int, T]:
    """pid -> measure(pid) over the tree under `root`; processes that vanished are left out."""
    out = {}
    for pid in descendants(root, proc):
        value = measure(pid, proc)
        if value is not None:
            out[pid] = value
    return out


def tree_hwm_kb(root: int, proc: Path = PROC) -> dict[int, int]:
    """pid -> VmHWM (kB) for the tree under `root`; processes that vanished are left out."""
    return per_process(root, vm_hwm_kb, proc)


@dataclass
class PeakRss:
    """Peaks per role across samples and restarts: role -> root pid -> pid -> max VmHWM (kB)."""

    trees: dict[str, dict[int, dict[int, int]]] = field(default_factory=dict)

    def sample(self, roots: dict[str, int | None], proc: Path = PROC) -> None:
        for role, root in roots.items():
            if root is None:
                continue
            tree = self.trees.setdefault(role, {}).setdefault(root, {})
            for pid, hwm in tree_hwm_kb(root, proc).items():
                tree[pid] = max(hwm, tree.get(pid, 0))

    def summary_mb(self) -> dict[str, dict[str, float | int]]:
        """Per role: max_process_mb, tree_sum_mb, processes (in the largest tree); MiB."""
        out: dict[str, dict[str, float | int]] = {}
        for role, trees in self.trees.items():
            if not any(trees.values()):
                continue
            biggest = max(trees.values(), key=lambda t: sum(t.values()))
            out[role] = {
                "max_process_mb": round(max(max(t.values()) for t in trees.values() if t) / 1024, 1),
                "tree_sum_mb": round(sum(biggest.values()) / 1024, 1),
                "processes": len(biggest),
            }
        return out

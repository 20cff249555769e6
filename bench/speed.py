"""How fast the machine's CPU is right now: the CPU time of a fixed piece of pure Python.

The benchmark runs on a virtual machine whose host is shared: the same loop took 0.45 s of CPU and,
a minute later on an idle guest, 0.77 s (no steal time reported). Every figure of a scenario moves
with it, the load generator's CPU per request included, although its work never changes. So the
harness probes before each scenario and records the figure next to it. One thread at an idle
moment: it flags a slow host, not every slowdown (contention between the pipeline's processes
shows only under load), which is why the throughput scenarios also alternate their configurations.
"""

from __future__ import annotations

import statistics
import time

LOOP = 300_000


def work(n: int) -> int:
    """The fixed piece of pure Python the probe times."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def probe_ms(repeats: int = 3) -> float:
    """Median CPU milliseconds of `LOOP` iterations of a fixed loop, over `repeats` tries."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        work(LOOP)
        times.append((time.process_time() - started) * 1000.0)
    return round(statistics.median(times), 1)

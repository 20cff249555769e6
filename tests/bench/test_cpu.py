"""CpuMeter's figures besides the roles: wall time and the hypervisor's steal, from /proc."""

from __future__ import annotations

import os
from pathlib import Path

from bench.cpu import MACHINE_FIGURES, CpuMeter
from bench.scenarios import per_1k

_TICKS = os.sysconf("SC_CLK_TCK")


def _proc(root: Path, uptime_s: float, steal_ticks: int) -> None:
    (root / "uptime").write_text(f"{uptime_s} 1.0\n")
    # user nice system idle iowait irq softirq steal guest guest_nice
    (root / "stat").write_text(f"cpu  100 0 50 900 5 0 3 {steal_ticks} 0 0\ncpu0 50 0 25 450 2 0 1 0 0 0\n")


def test_steal_and_wall_are_measured_from_start(tmp_path: Path) -> None:
    _proc(tmp_path, 1000.0, 2 * _TICKS)
    meter = CpuMeter(lambda: {}, proc=tmp_path)
    meter.start()
    _proc(tmp_path, 1010.0, 5 * _TICKS)
    figures = meter.since()
    assert figures["wall_s"] == 10.0
    assert figures["steal_s"] == 3.0
    assert set(figures) == set(MACHINE_FIGURES)  # no role here: only what per_1k leaves out


def test_steal_is_not_a_role_per_1000_events() -> None:
    assert per_1k({"bridge": 1.0, "wall_s": 10.0, "all_cores_s": 20.0, "steal_s": 0.5}, 1000) == {"bridge": 1000.0}

"""bench.rss: VmHWM per process tree, read from a /proc laid out in a temporary folder."""

from __future__ import annotations

from pathlib import Path

from bench.rss import PeakRss, descendants, vm_hwm_kb


def _process(proc: Path, pid: int, ppid: int, name: str, hwm_kb: int | None) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    # A command name with spaces and a parenthesis, as /proc allows.
    (folder / "stat").write_text(f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194560 0 0 0 0 7 3 0 0 20 0 1 0\n")
    status = f"Name:\t{name}\nVmPeak:\t  9999 kB\n"
    if hwm_kb is not None:
        status += f"VmHWM:\t{hwm_kb} kB\nVmRSS:\t{hwm_kb // 2} kB\n"
    (folder / "status").write_text(status)


def _tree(proc: Path, master_hwm: int = 50_000) -> None:
    _process(proc, 1, 0, "init", 1_000)
    _process(proc, 100, 1, "gunicorn: master (x)", master_hwm)
    _process(proc, 101, 100, "gunicorn: worker", 70_000)
    _process(proc, 102, 100, "gunicorn: worker", 60_000)
    _process(proc, 200, 1, "bridge", 90_000)
    _process(proc, 300, 102, "zombie", None)


def test_descendants_follow_parent_pids(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert sorted(descendants(100, tmp_path)) == [100, 101, 102, 300]
    assert descendants(200, tmp_path) == [200]


def test_vm_hwm_is_none_for_gone_or_memoryless_processes(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert vm_hwm_kb(101, tmp_path) == 70_000
    assert vm_hwm_kb(300, tmp_path) is None
    assert vm_hwm_kb(999, tmp_path) is None


def test_peaks_keep_the_largest_process_and_the_largest_tree_across_restarts(tmp_path: Path) -> None:
    peaks = PeakRss()
    _tree(tmp_path / "first")
    peaks.sample({"ingest": 100, "bridge": 200, "worker": None}, tmp_path / "first")
    _tree(tmp_path / "second", master_hwm=40_000)
    peaks.sample({"ingest": 100}, tmp_path / "second")  # same pids: the higher mark is kept
    summary = peaks.summary_mb()
    assert summary["ingest"] == {"max_process_mb": 68.4, "tree_sum_mb": 175.8, "processes": 3}
    assert summary["bridge"] == {"max_process_mb": 87.9, "tree_sum_mb": 87.9, "processes": 1}
    assert "worker" not in summary

"""bench.baseline: figures of a document, their ratios to a baseline's, the baseline's arguments,
environment and worktree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import baseline
from bench.report import build_document


def _document(batched: float | None, single: float | None, p99: float | None, rss: float) -> dict[str, Any]:
    return build_document(
        machine={},
        config={},
        throughput={
            "batched_100": {"tracing_off": 40_000.0, "sampled_100": batched},
            "single_event": {"sampled_100": single},
        },
        latency={"2000": {"p50": 300.0, "p99": p99}},
        celery_hop={"direct_eps": 100_000.0, "pipeline_eps": 65_000.0, "ratio": 0.65, "events": 200_000, "rounds": 3},
        peak_rss={"ingest": {"max_process_mb": rss, "tree_sum_mb": 250.0, "processes": 7}},
        duration_s=1.0,
    )


def test_figures_are_the_measured_leaves_by_path() -> None:
    found = baseline.figures(_document(36_000.0, None, 650.0, 70.0))
    assert found["throughput_eps.batched_100.sampled_100"] == 36_000.0
    assert found["tracing_cost_ratio.sampled_100"] == 0.9
    assert found["latency_ms.2000.p99"] == 650.0
    assert found["celery_hop.ratio"] == 0.65
    assert found["peak_rss_mb.ingest.max_process_mb"] == 70.0
    # Not measured, and the run's sizes, are not figures.
    assert "throughput_eps.single_event.sampled_100" not in found
    assert "celery_hop.events" not in found
    assert "celery_hop.rounds" not in found
    assert "peak_rss_mb.ingest.processes" not in found


def test_compare_gives_current_over_baseline() -> None:
    ratios = baseline.compare(_document(34_000.0, 2_000.0, 600.0, 35.0), _document(40_000.0, None, 800.0, 70.0))
    batched = ratios["throughput_eps.batched_100.sampled_100"]
    assert batched == {
        "current": 34_000.0,
        "baseline": 40_000.0,
        "ratio": 0.85,
        "lower_is_better": False,
        "floor": 0.85,
        "met": True,
    }
    assert ratios["latency_ms.2000.p99"]["ratio"] == 0.75
    assert ratios["latency_ms.2000.p99"]["lower_is_better"] is True
    assert ratios["peak_rss_mb.ingest.max_process_mb"]["ratio"] == 0.5
    # Measured on one side only: both values kept, no ratio.
    single = ratios["throughput_eps.single_event.sampled_100"]
    assert (single["current"], single["baseline"], single["ratio"]) == (2_000.0, None, None)


def test_a_floor_is_missed_below_it_and_unknown_without_a_figure() -> None:
    missed = baseline.compare(_document(33_000.0, None, 600.0, 70.0), _document(40_000.0, None, 600.0, 70.0))
    assert missed["throughput_eps.batched_100.sampled_100"]["met"] is False
    unmeasured = baseline.compare(_document(None, None, 600.0, 70.0), _document(40_000.0, None, 600.0, 70.0))
    assert unmeasured["throughput_eps.batched_100.sampled_100"]["met"] is None


def test_a_zero_baseline_has_no_ratio() -> None:
    ratios = baseline.compare({"celery_hop": {"ratio": 0.6}}, {"celery_hop": {"ratio": 0}})
    assert ratios["celery_hop.ratio"]["ratio"] is None


def test_ratio_lines() -> None:
    ratios = baseline.compare(_document(34_000.0, 2_000.0, 600.0, 70.0), _document(40_000.0, None, 800.0, 70.0))
    lines = {line.split(":")[0].strip(): line for line in baseline.ratio_lines(ratios)[1:]}
    assert lines["throughput_eps.batched_100.sampled_100"] == (
        "  throughput_eps.batched_100.sampled_100: 34,000.0 (baseline 40,000.0): 0.850x [floor 0.85: met]"
    )
    assert lines["latency_ms.2000.p99"].endswith("0.750x, lower is better")
    assert lines["throughput_eps.single_event.sampled_100"].endswith("2,000.0 (baseline not measured)")


def test_the_baseline_gets_the_arguments_but_its_own() -> None:
    argv = ["--quick", "--baseline", "main", "--out", "/tmp/x", "--scenarios=batched", "--baseline=HEAD~1", "--out=o"]
    assert baseline.baseline_argv(argv) == ["--quick", "--scenarios=batched"]


def test_the_baseline_finds_the_environment_this_run_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SENTINEL_CLICKHOUSE_DATABASE", "sentinel_bench")  # as use_bench_database left it
    monkeypatch.setenv("SENTINEL_PORT_OFFSET", "100")
    env = baseline.environment({"SENTINEL_CLICKHOUSE_DATABASE": None}, tmp_path / "stack")
    assert "SENTINEL_CLICKHOUSE_DATABASE" not in env
    assert env["SENTINEL_PORT_OFFSET"] == "100"
    assert env["SENTINEL_STACK_DIR"] == str(tmp_path / "stack")
    env = baseline.environment({"SENTINEL_CLICKHOUSE_DATABASE": "other"}, tmp_path)
    assert env["SENTINEL_CLICKHOUSE_DATABASE"] == "other"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_the_worktree_is_made_once_per_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "requirements.txt").write_text("flask==1\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    first = baseline.resolve(repo, "HEAD")
    assert first == _git(repo, "rev-parse", "HEAD")
    with pytest.raises(RuntimeError, match="not a commit"):
        baseline.resolve(repo, "no-such-ref")

    tree = baseline.worktree(repo, first)
    assert tree == repo / ".bench" / f"baseline-{first[:12]}"
    assert (tree / "requirements.txt").read_text() == "flask==1\n"
    assert baseline.worktree(repo, first) == tree  # reused
    # The same runtime requirements: the baseline runs on this interpreter, no virtualenv built.
    assert baseline.interpreter(repo, tree) == Path(sys.executable)

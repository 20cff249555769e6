"""bench.report: percentiles, target evaluation and the document's keys, from made-up figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import median_result, plan
from bench.pipeline import DEFAULT_TRACING, TRACING_CONFIGS
from bench.report import build_document, evaluate_targets, latency_summary, percentile, target_lines, write_chart

TOP_LEVEL = {
    "machine",
    "config",
    "throughput_eps",
    "tracing_cost_ratio",
    "latency_ms",
    "celery_hop",
    "peak_rss_mb",
    "targets",
    "duration_s",
    "details",
    "errors",
    "baseline",
}


def _document(**overrides: object) -> dict:
    figures: dict = {
        "machine": {"cores": 2},
        "config": {"mode": "quick", "run_id": "test"},
        "throughput": {
            "batched_100": {"tracing_off": 25_000.0, "sampled_100": 20_000.0, "sampled_10": 24_000.0},
            "single_event": {"tracing_off": 2_500.0, "sampled_100": 1_900.0, "sampled_10": 2_400.0},
        },
        "latency": {
            "500": {"p50": 250.0, "p95": 300.0, "p99": 350.0},
            "2000": {"p50": 260.0, "p95": 500.0, "p99": 1_200.0},
            "5000": {"p50": 300.0, "p95": 700.0, "p99": 900.0},
        },
        "celery_hop": {"direct_eps": 40_000.0, "pipeline_eps": 30_000.0, "ratio": 0.75},
        "peak_rss": {"ingest": {"max_process_mb": 70.0, "tree_sum_mb": 160.0, "processes": 3}},
        "duration_s": 95.04,
    }
    figures.update(overrides)
    return build_document(**figures)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_none_and_out_of_range_is_refused() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_is_in_milliseconds() -> None:
    summary = latency_summary([0.1, 0.2, 0.3, 0.4, 0.5])
    assert summary == {"p50": 300.0, "p95": 480.0, "p99": 496.0}
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None}


def test_document_has_every_key_and_derives_ratios() -> None:
    document = _document()
    assert set(document) == TOP_LEVEL
    assert document["baseline"] is None  # filled by --baseline only
    assert set(document["throughput_eps"]) == {"batched_100", "single_event"}
    for mode in document["throughput_eps"].values():
        assert set(mode) == {"tracing_off", "sampled_100", "sampled_10", "tracing_off_control"}
    # The control is null unless measured (--tracing chooses it).
    assert document["tracing_cost_ratio"] == {"sampled_100": 0.8, "sampled_10": 0.96, "tracing_off_control": None}
    assert set(document["latency_ms"]) == {"500", "2000", "5000"}
    assert set(document["peak_rss_mb"]) == {"ingest", "bridge", "worker"}
    assert document["peak_rss_mb"]["bridge"] == {"max_process_mb": None, "tree_sum_mb": None, "processes": None}
    json.dumps(document, allow_nan=False)  # plain JSON, no NaN or infinity


def test_targets_are_judged_by_direction() -> None:
    targets = _document()["targets"]
    assert targets["batched_throughput_eps"]["measured"] == 20_000.0
    assert targets["batched_throughput_eps"]["met"] is True  # 20,000 >= 20,000
    assert targets["single_event_throughput_eps"]["met"] is False
    assert targets["tracing_100_ratio"]["met"] is True  # 0.8 >= 0.7
    assert targets["tracing_10_ratio"]["met"] is True  # 0.96 >= 0.9
    assert targets["celery_hop_ratio"]["met"] is True
    assert targets["latency_p99_ms_at_2000"]["op"] == "<="
    assert targets["latency_p99_ms_at_2000"]["met"] is False  # 1,200 ms > 1 s


def test_the_log_names_each_target_met_missed_or_unmeasured() -> None:
    lines = target_lines(_document()["targets"])
    assert lines[0] == "targets: 4 of 6 met (6 measured)"
    by_name = {line.split(":")[0].strip(): line for line in lines[1:]}
    assert by_name["batched_throughput_eps"].endswith(": met")
    assert "missed" in by_name["single_event_throughput_eps"]
    # Below a ">=" target: the share reached; above a "<=" one: the target over the figure.
    assert by_name["latency_p99_ms_at_2000"] == "  latency_p99_ms_at_2000: 1,200.0 (<= 1,000): missed, 83% of the way"
    near = {"celery_hop_ratio": {"measured": 0.599, "target": 0.6, "op": ">=", "met": False}}
    assert target_lines(near)[1] == "  celery_hop_ratio: 0.599 (>= 0.6): missed, 99% of the way"
    empty = build_document(
        machine={}, config={}, throughput={}, latency={}, celery_hop=None, peak_rss={}, duration_s=1.0
    )
    unmeasured = target_lines(empty["targets"])
    assert unmeasured[0] == "targets: 0 of 6 met (0 measured)"
    assert all("not measured" in line for line in unmeasured[1:])


def test_unmeasured_figures_are_null_with_the_same_keys() -> None:
    empty = build_document(
        machine={}, config={}, throughput={}, latency={}, celery_hop=None, peak_rss={}, duration_s=1.0
    )
    full = _document()
    assert set(empty) == set(full)
    assert empty["throughput_eps"]["batched_100"]["sampled_100"] is None
    assert empty["tracing_cost_ratio"] == {"sampled_100": None, "sampled_10": None, "tracing_off_control": None}
    assert empty["celery_hop"] == {"direct_eps": None, "pipeline_eps": None, "ratio": None}
    assert all(t["measured"] is None and t["met"] is None for t in empty["targets"].values())
    assert set(evaluate_targets(empty)) == set(full["targets"])


def test_plan_runs_latency_at_full_sampling_and_the_hop_without_tracing() -> None:
    steps = plan(("batched", "single", "latency", "celery_hop"), ("tracing_off", "sampled_100", "sampled_10"))
    assert steps == [
        ("tracing_off", ["batched", "single", "celery_hop"]),
        ("sampled_10", ["batched", "single"]),
        ("sampled_100", ["batched", "single", "latency"]),
    ]
    assert plan(("latency",), ("sampled_10",)) == [("sampled_10", ["latency"])]


def test_rounds_rotate_the_configs_with_the_hop_first_and_latency_in_the_last_round() -> None:
    steps = plan(("batched", "single", "latency", "celery_hop"), ("tracing_off", "sampled_100", "sampled_10"), 3)
    assert steps == [
        ("tracing_off", ["batched", "single", "celery_hop"]),
        ("sampled_10", ["batched", "single"]),
        ("sampled_100", ["batched", "single"]),
        ("sampled_10", ["batched", "single"]),
        ("sampled_100", ["batched", "single"]),
        ("tracing_off", ["batched", "single"]),
        ("sampled_100", ["batched", "single", "latency"]),
        ("tracing_off", ["batched", "single"]),
        ("sampled_10", ["batched", "single"]),
    ]
    # Each config runs once in each position of a round.
    positions = {config: sorted(i % 3 for i, (c, _) in enumerate(steps) if c == config) for config, _ in steps}
    assert all(found == [0, 1, 2] for found in positions.values())
    assert plan(("latency", "celery_hop"), ("tracing_off",), 3) == [
        ("tracing_off", ["celery_hop"]),
        ("tracing_off", ["latency"]),
    ]


def test_the_control_is_tracing_off_measured_again_and_judged_by_nothing(tmp_path: Path) -> None:
    assert TRACING_CONFIGS["tracing_off_control"] == TRACING_CONFIGS["tracing_off"]
    assert "tracing_off_control" not in DEFAULT_TRACING
    batched = {
        "tracing_off": 25_000.0,
        "sampled_100": 20_000.0,
        "sampled_10": 24_000.0,
        "tracing_off_control": 22_500.0,
    }
    document = _document(throughput={"batched_100": batched})
    assert document["tracing_cost_ratio"]["tracing_off_control"] == 0.9
    assert document["throughput_eps"]["batched_100"]["tracing_off_control"] == 22_500.0
    # The verdicts are the same with or without it; the tracing ratios show it beside theirs.
    without = _document(throughput={"batched_100": {k: v for k, v in batched.items() if k != "tracing_off_control"}})
    verdicts = {name: (t["measured"], t["met"]) for name, t in document["targets"].items()}
    assert verdicts == {name: (t["measured"], t["met"]) for name, t in without["targets"].items()}
    assert document["targets"]["tracing_10_ratio"]["control"] == 0.9
    assert without["targets"]["tracing_10_ratio"]["control"] is None
    assert "control" not in document["targets"]["celery_hop_ratio"]
    lines = {line.split(":")[0].strip(): line for line in target_lines(document["targets"])[1:]}
    assert lines["tracing_100_ratio"].endswith(": met (control 0.9)")
    assert lines["batched_throughput_eps"].endswith(": met")
    assert write_chart(document, tmp_path / "with-control.png").read_bytes()[:4] == b"\x89PNG"


def test_the_control_rotates_with_the_other_configs_after_them_in_the_first_round() -> None:
    configs = ("tracing_off", "sampled_100", "sampled_10", "tracing_off_control")
    steps = plan(("batched", "celery_hop"), configs, 4)
    assert [c for c, _ in steps[:4]] == ["tracing_off", "sampled_10", "sampled_100", "tracing_off_control"]
    assert steps[0] == ("tracing_off", ["batched", "celery_hop"])
    # Over as many rounds as configs, each runs once in each position of a round.
    positions = {config: sorted(i % 4 for i, (c, _) in enumerate(steps) if c == config) for config in configs}
    assert all(found == [0, 1, 2, 3] for found in positions.values())


def test_a_scenario_over_rounds_is_its_median_with_every_round_kept() -> None:
    rounds = [
        {"eps": 100.0, "cpu_ms_per_1k_events": {"ingest": 30.0, "bridge": 10.0}},
        {"eps": 140.0, "cpu_ms_per_1k_events": {"ingest": 20.0}},
        {"eps": 120.0, "cpu_ms_per_1k_events": {"ingest": 25.0, "bridge": 14.0}},
    ]
    summary = median_result(rounds)
    assert summary["eps"] == 120.0
    assert summary["cpu_ms_per_1k_events"] == {"bridge": 10.0, "ingest": 25.0}
    assert summary["rounds"] == rounds


def test_chart_is_written_as_png(tmp_path: Path) -> None:
    path = write_chart(_document(), tmp_path / "out" / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _rounds(*eps: float) -> dict:
    """A scenario's details as bench.__main__ keeps them: the median and each round, numbered."""
    return {"eps": sorted(eps)[len(eps) // 2], "rounds": [{"round": n, "eps": e} for n, e in enumerate(eps, 1)]}


def test_each_verdict_shows_its_rounds_and_the_ratios_pair_rounds_of_one_rotation() -> None:
    details = {
        "throughput": {
            "batched_100": {
                "tracing_off": _rounds(30_000.0, 20_000.0, 25_000.0),
                "sampled_100": _rounds(24_000.0, 18_000.0, 20_000.0),
                # Its second round failed: the third pairs with tracing off's third, not its second.
                "sampled_10": {
                    "eps": 23_000.0,
                    "rounds": [{"round": 1, "eps": 27_000.0}, {"round": 3, "eps": 23_000.0}],
                },
            },
            "single_event": {"sampled_100": _rounds(1_900.0, 2_100.0, 1_700.0)},
        }
    }
    hop = {"direct_eps": 40_000.0, "pipeline_eps": 26_000.0, "ratio": 0.65, "round_ratios": [0.7, 0.65, 0.58]}
    targets = _document(details=details, celery_hop=hop)["targets"]
    assert targets["single_event_throughput_eps"]["rounds"] == [1_900.0, 2_100.0, 1_700.0]
    assert targets["tracing_100_ratio"]["rounds"] == [0.8, 0.9, 0.8]
    assert targets["tracing_10_ratio"]["rounds"] == [0.9, 0.92]
    assert targets["celery_hop_ratio"]["rounds"] == [0.7, 0.65, 0.58]
    assert targets["latency_p99_ms_at_2000"]["rounds"] is None  # measured once
    lines = {line.split(":")[0].strip(): line for line in target_lines(targets)[1:]}
    assert lines["single_event_throughput_eps"] == (
        "  single_event_throughput_eps: 1,900.0 (>= 2,000): missed, 95% of the way (rounds 1,900.0, 2,100.0, 1,700.0)"
    )
    assert lines["tracing_10_ratio"].endswith("(rounds 0.9, 0.92)")
    assert lines["latency_p99_ms_at_2000"].endswith("missed, 83% of the way")


def test_a_figure_measured_in_one_round_shows_no_rounds() -> None:
    details = {"throughput": {"batched_100": {"tracing_off": _rounds(25_000.0), "sampled_100": _rounds(20_000.0)}}}
    targets = _document(details=details)["targets"]
    assert targets["tracing_100_ratio"]["rounds"] == [0.8]
    assert target_lines(targets)[3] == "  tracing_100_ratio: 0.8 (>= 0.7): met"

"""bench.proxy_report: latency summaries, added latency, calls/s ratios and targets, from made-up figures."""

from __future__ import annotations

import json

import pytest

from bench.proxy_report import (
    TARGETS,
    Measured,
    added_latency,
    build_document,
    difference,
    evaluate_targets,
    latency_ms,
    ratio,
    summarize,
)


def _ms(*values: float) -> tuple[float, ...]:
    return tuple(v / 1000.0 for v in values)


def test_latency_ms_interpolates_percentiles_and_rounds_to_the_microsecond() -> None:
    summary = latency_ms(_ms(*range(1, 101)))  # 1..100 ms
    assert summary == {"n": 100, "p50": 50.5, "p99": 99.01, "mean": 50.5}


def test_latency_ms_of_no_samples_is_null() -> None:
    assert latency_ms(()) == {"n": 0, "p50": None, "p99": None, "mean": None}


def test_added_latency_is_the_difference_of_percentiles() -> None:
    path = {"p50": 1.25, "p99": 4.0}
    direct = {"p50": 1.0, "p99": 4.5}
    assert added_latency(path, direct) == {"p50": 0.25, "p99": -0.5}
    assert added_latency({"p50": None, "p99": 1.0}, direct) == {"p50": None, "p99": -3.5}


def test_difference_and_ratio_are_null_when_a_side_is_missing() -> None:
    assert difference(2.0, None) is None
    assert difference(None, 2.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(2.0, None) is None
    assert ratio(2.0, 0.0) is None
    assert ratio(1.0, 3.0) == 0.333


def _run() -> list[Measured]:
    """Two rounds over both transports; sentinel adds 0.2 ms over stdio, mcp-proxy measured over HTTP only."""
    out = []
    for n, slower in ((1, 0.0), (2, 1.0)):  # round 2's host is 1 ms slower on every path
        out += [
            Measured("stdio", "direct", n, _ms(1 + slower, 1 + slower, 3 + slower), 1000.0, 0.3, 0.4 + n / 10),
            Measured("stdio", "sentinel", n, _ms(1.2 + slower, 1.2 + slower, 3.5 + slower), 900.0, 0.45, 0.5),
            Measured("http", "direct", n, _ms(5 + slower, 5 + slower, 9 + slower), 200.0),
            Measured("http", "mcp-proxy", n, _ms(3 + slower, 3 + slower, 6 + slower), 400.0 if n == 1 else 300.0),
            Measured("http", "sentinel", n, _ms(2 + slower, 2 + slower, 4 + slower), 600.0),
            Measured("http", "sentinel-url", n, _ms(5.3 + slower, 5.3 + slower, 9.8 + slower), 180.0),
        ]
    return out


def test_summarize_pools_rounds_per_path_and_pairs_each_round_with_its_direct_path() -> None:
    figures = summarize(_run())
    assert figures["latency_ms"]["stdio"]["direct"]["n"] == 6
    assert figures["latency_ms"]["stdio"]["direct"]["p50"] == 2.0  # median of 1, 1, 3, 2, 2, 4
    added = figures["added_latency_ms"]["stdio"]["sentinel"]
    assert added["p50"] == 0.2
    assert [r["p50"] for r in added["rounds"]] == [0.2, 0.2]
    assert "direct" not in figures["added_latency_ms"]["http"]
    assert set(figures["added_latency_ms"]["http"]) == {"mcp-proxy", "sentinel", "sentinel-url"}
    assert figures["added_latency_ms"]["http"]["sentinel-url"]["p50"] == 0.3


def test_summarize_gives_median_calls_per_s_and_ratios_of_medians_and_of_rounds() -> None:
    figures = summarize(_run())
    assert figures["calls_per_s"]["http"]["mcp-proxy"] == {"median": 350.0, "rounds": [400.0, 300.0]}
    http = figures["ratios"]["http"]
    assert http["sentinel/mcp-proxy"]["calls_per_s"] == round(600 / 350, 3)
    assert http["sentinel/mcp-proxy"]["calls_per_s_rounds"] == [1.5, 2.0]
    assert http["sentinel/mcp-proxy"]["p50_latency"] == 0.75  # p50 3 ms / 4 ms
    assert set(http) == {"sentinel/mcp-proxy", "sentinel/direct", "sentinel-url/direct", "mcp-proxy/direct"}
    # Over stdio there is no mcp-proxy: no ratio that needs it.
    assert set(figures["ratios"]["stdio"]) == {"sentinel/direct"}


def test_summarize_gives_cpu_per_call_medians_and_what_a_path_adds_over_direct() -> None:
    figures = summarize(_run())
    stdio = figures["cpu_ms_per_call"]["stdio"]
    assert stdio["direct"] == {"server_side": 0.3, "client": 0.55}  # median of 0.5 and 0.6
    assert stdio["sentinel"] == {"server_side": 0.45, "client": 0.5, "server_side_added": 0.15}
    assert figures["ratios"]["stdio"]["sentinel/direct"]["server_cpu_per_call"] == 1.5
    # Not measured (the HTTP rounds above have no CPU figures): null, not zero.
    assert figures["cpu_ms_per_call"]["http"]["mcp-proxy"] == {
        "server_side": None,
        "client": None,
        "server_side_added": None,
    }


def test_summarize_without_a_direct_path_has_no_added_latency() -> None:
    figures = summarize([m for m in _run() if m.path != "direct"])
    assert figures["added_latency_ms"] == {}
    assert "sentinel/direct" not in figures["ratios"]["http"]


def test_targets_are_met_missed_or_null_with_their_rounds() -> None:
    document = summarize(_run())
    targets = evaluate_targets(document)
    assert set(targets) == {t.name for t in TARGETS}
    assert targets["stdio_p50_added_ms"]["measured"] == 0.2
    assert targets["stdio_p50_added_ms"]["met"] is True
    assert targets["stdio_p50_added_ms"]["rounds"] == [0.2, 0.2]
    assert targets["http_calls_per_s_vs_mcp_proxy"]["met"] is True
    assert targets["http_calls_per_s_vs_mcp_proxy"]["rounds"] == [1.5, 2.0]
    slow = summarize(
        [m for m in _run() if m.path != "sentinel-url"] + [Measured("http", "sentinel-url", 1, _ms(7, 7, 13), 100.0)]
    )
    missed = evaluate_targets(slow)
    assert missed["http_p50_added_ms"]["met"] is False
    assert missed["http_p50_added_ms"]["rounds"] is None  # one round: nothing to spread
    unmeasured = evaluate_targets(summarize([m for m in _run() if m.path in ("direct", "mcp-proxy")]))
    assert all(unmeasured[name]["met"] is None for name in unmeasured)


@pytest.mark.parametrize("errors", [[], ["http/sentinel round 2: RuntimeError: boom"]])
def test_build_document_has_stable_keys_and_is_json(errors: list[str]) -> None:
    document = build_document(
        machine={"cores": 2}, config={"mode": "quick"}, measured=_run(), duration_s=12.345, errors=errors
    )
    assert list(document) == [
        "benchmark",
        "machine",
        "config",
        "latency_ms",
        "added_latency_ms",
        "calls_per_s",
        "cpu_ms_per_call",
        "ratios",
        "targets",
        "duration_s",
        "errors",
    ]
    assert document["duration_s"] == 12.3
    assert document["errors"] == errors
    assert json.loads(json.dumps(document)) == document

"""The benchmark's output: one JSON document with stable keys, the targets it is judged by, a PNG chart.

Pure functions over plain data, so the document's shape is tested without services
(tests/bench/test_report.py). A figure that was not measured (a scenario left out with --scenarios,
or one that failed) is null, and a target whose figure is null has `"met": null`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POST_MODES = ("batched_100", "single_event")
TRACING = ("tracing_off", "sampled_100", "sampled_10", "tracing_off_control")
LATENCY_RATES = (500, 2000, 5000)
ROLES = ("ingest", "bridge", "worker")
PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    path: tuple[str, ...]  # where the measured figure is in the document
    op: str  # ">=" or "<="
    target: float


TARGETS: tuple[Target, ...] = (
    Target(
        "batched_throughput_eps",
        "events/s end to end, 100 events per POST, tracing on (100% sampling)",
        ("throughput_eps", "batched_100", "sampled_100"),
        ">=",
        20_000,
    ),
    Target(
        "single_event_throughput_eps",
        "events/s end to end, one event per POST, tracing on (100% sampling)",
        ("throughput_eps", "single_event", "sampled_100"),
        ">=",
        2_000,
    ),
    Target(
        "tracing_100_ratio",
        "batched throughput at 100% sampling / tracing off",
        ("tracing_cost_ratio", "sampled_100"),
        ">=",
        0.70,
    ),
    Target(
        "tracing_10_ratio",
        "batched throughput at 10% parent-based sampling / tracing off",
        ("tracing_cost_ratio", "sampled_10"),
        ">=",
        0.90,
    ),
    Target(
        "celery_hop_ratio",
        "pipeline events/s / direct baseline events/s",
        ("celery_hop", "ratio"),
        ">=",
        0.60,
    ),
    Target(
        "latency_p99_ms_at_2000",
        "p99 POST-to-row latency at 2,000 events/s offered, ms",
        ("latency_ms", "2000", "p99"),
        "<=",
        1_000,
    ),
)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default).

    None for no values. Raises ValueError for q outside 0..100.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99 in milliseconds (rounded to 0.1 ms), null when there are no samples."""
    out: dict[str, float | None] = {}
    for key, q in PERCENTILES:
        value = percentile(latencies_s, q)
        out[key] = None if value is None else round(value * 1000.0, 1)
    return out


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def round_figures(document: dict[str, Any], target: Target) -> list[float] | None:
    """The target's figure in each round that measured it, in round order; None for a figure
    measured once (latency) or not at all.

    A throughput target's figure is the median of its rounds, a hop ratio the ratio of its sides'
    medians; a tracing ratio is shown here round by round: a configuration against tracing off in
    the same rotation, minutes apart (bench.__main__.plan), where the host has drifted less than
    between the two medians. A reader sees how far the rounds spread around the verdict.
    """
    kind = target.path[0]
    details = document.get("details") or {}
    if kind == "throughput_eps":
        _, mode, tracing = target.path
        return list(_eps_by_round(details, mode, tracing).values()) or None
    if kind == "tracing_cost_ratio":
        traced = _eps_by_round(details, "batched_100", target.path[1])
        untraced = _eps_by_round(details, "batched_100", "tracing_off")
        paired = [ratio(traced[n], untraced[n]) for n in sorted(traced) if untraced.get(n)]
        return [r for r in paired if r is not None] or None
    if kind == "celery_hop":
        return (document.get("celery_hop") or {}).get("round_ratios") or None
    return None


def _eps_by_round(details: dict[str, Any], mode: str, tracing: str) -> dict[int, float]:
    """Round number -> events/s of one throughput scenario's rounds (those that finished)."""
    summary = ((details.get("throughput") or {}).get(mode) or {}).get(tracing) or {}
    rounds = summary.get("rounds") or []
    # Documents written before rounds carried their number: their order is the rounds' order.
    return {r.get("round", i): r["eps"] for i, r in enumerate(rounds, 1) if r.get("eps")}


def evaluate_targets(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with its measured figure and whether it is met (null when not measured), the
    figure round by round, and for the tracing ratios this run's A/A control when it was measured."""
    control = (document.get("tracing_cost_ratio") or {}).get("tracing_off_control")
    out = {}
    for target in TARGETS:
        out[target.name] = verdict(target, value_at(document, target.path), round_figures(document, target))
        if target.path[0] == "tracing_cost_ratio":
            # Tracing off against itself: how far this run's host alone moved such a ratio.
            out[target.name]["control"] = control
    return out


def verdict(target: Target, measured: Any, rounds: list[float] | None) -> dict[str, Any]:
    """A target with its measured figure and whether it is met (null when not measured), in the
    shape target_lines prints (shared by every benchmark's targets)."""
    met = None
    if isinstance(measured, int | float):
        met = measured >= target.target if target.op == ">=" else measured <= target.target
    return {
        "target": target.target,
        "op": target.op,
        "measured": measured,
        "met": met,
        "what": target.description,
        "rounds": rounds,
    }


def value_at(document: dict[str, Any], path: Sequence[str]) -> Any:
    """The document's value at `path` (keys of nested objects), None where it has none."""
    value: Any = document
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def target_lines(targets: dict[str, dict[str, Any]]) -> list[str]:
    """One line per target for the progress log: met, missed (with the share reached) or not measured."""
    met = sum(1 for t in targets.values() if t["met"])
    measured = sum(1 for t in targets.values() if t["met"] is not None)
    lines = [f"targets: {met} of {len(targets)} met ({measured} measured)"]
    for name, t in targets.items():
        if t["met"] is None:
            lines.append(f"  {name}: not measured (target {t['op']} {t['target']:,})")
            continue
        value, goal = t["measured"], t["target"]
        figure = f"  {name}: {value:,} ({t['op']} {goal:,})"
        if t["met"]:
            verdict = f"{figure}: met"
        else:
            # Missed: a figure that misses a "<=" target is above a positive number, so never 0.
            share = value / goal if t["op"] == ">=" else goal / value
            # Rounded down: 0.599 against 0.6 is "99%", never a missed target "100% of the way".
            verdict = f"{figure}: missed, {math.floor(share * 100)}% of the way"
        lines.append(verdict + _spread(t))
    return lines


def _spread(target: dict[str, Any]) -> str:
    """What a verdict is read against: its rounds, when there were several, and the A/A control."""
    notes = []
    rounds = target.get("rounds") or []
    if len(rounds) > 1:
        notes.append("rounds " + ", ".join(f"{r:,}" for r in rounds))
    if target.get("control") is not None:
        notes.append(f"control {target['control']}")
    return f" ({'; '.join(notes)})" if notes else ""


def build_document(
    *,
    machine: dict[str, Any],
    config: dict[str, Any],
    throughput: dict[str, dict[str, float | None]],
    latency: dict[str, dict[str, float | None]],
    celery_hop: dict[str, Any] | None,
    peak_rss: dict[str, dict[str, float | int]],
    duration_s: float,
    details: dict[str, Any] | None = None,
    errors: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON document. Every key is present whatever was measured; missing figures are null.

    throughput: post mode -> tracing config -> events/s; latency: str(rate) -> percentile -> ms;
    celery_hop: at least direct_eps, pipeline_eps, ratio; peak_rss: role -> figures in MiB.
    """
    throughput_eps = {mode: {t: throughput.get(mode, {}).get(t) for t in TRACING} for mode in POST_MODES}
    batched = throughput_eps["batched_100"]
    hop = {"direct_eps": None, "pipeline_eps": None, "ratio": None, **(celery_hop or {})}
    empty_rss = {"max_process_mb": None, "tree_sum_mb": None, "processes": None}
    document: dict[str, Any] = {
        "machine": machine,
        "config": config,
        "throughput_eps": throughput_eps,
        # Each against tracing off; tracing_off_control is off against itself (A/A): how far this
        # run's host moved a ratio with nothing changed. Null unless --tracing chose it.
        "tracing_cost_ratio": {
            tracing: ratio(batched[tracing], batched["tracing_off"]) for tracing in TRACING if tracing != "tracing_off"
        },
        "latency_ms": {
            str(rate): {key: latency.get(str(rate), {}).get(key) for key, _ in PERCENTILES} for rate in LATENCY_RATES
        },
        "celery_hop": hop,
        "peak_rss_mb": {role: {**empty_rss, **peak_rss.get(role, {})} for role in ROLES},
    }
    document["targets"] = {}  # filled below, from the whole document: they show the details' rounds
    document["duration_s"] = round(duration_s, 1)
    document["details"] = details or {}
    document["errors"] = list(errors)
    # With --baseline: REF, its commit, each figure's ratio to it and its whole document (bench/baseline.py).
    document["baseline"] = None
    document["targets"] = evaluate_targets(document)
    return document


def write_chart(document: dict[str, Any], path: Path) -> Path:
    """Draw throughput per post mode and tracing config, latency percentiles per offered rate,
    the Celery hop and peak RSS into a PNG at `path`. Unmeasured figures are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    run = document.get("config", {}).get("run_id", "")
    mode = document.get("config", {}).get("mode", "")
    fig.suptitle(f"Sentinel pipeline benchmark {run} ({mode}, {document.get('machine', {}).get('cores', '?')} cores)")

    ax = axes[0][0]
    # The target configurations always have a bar (empty when not measured); the control only when run.
    eps = document["throughput_eps"]
    shown = [t for t in TRACING if t != "tracing_off_control" or any(eps[m][t] for m in POST_MODES)]
    width = 0.8 / len(shown)
    for i, tracing in enumerate(shown):
        values = [eps[m][tracing] or 0.0 for m in POST_MODES]
        offset = (i - (len(shown) - 1) / 2) * width
        bars = ax.bar([x + offset for x in range(len(POST_MODES))], values, width, label=tracing)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=8)
    for target in TARGETS[:2]:
        x = POST_MODES.index(target.path[1])
        ax.hlines(target.target, x - 0.4, x + 0.4, colors="red", linestyles="dashed")
    ax.set_xticks(range(len(POST_MODES)), POST_MODES)
    ax.set_ylabel("events/s, POST to queryable row")
    ax.set_title("Sustained throughput (dashed: target)")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    rates = [str(r) for r in LATENCY_RATES]
    width = 0.27
    for i, (key, _) in enumerate(PERCENTILES):
        values = [document["latency_ms"][r][key] or 0.0 for r in rates]
        bars = ax.bar([x + (i - 1) * width for x in range(len(rates))], values, width, label=key)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=8)
    ax.axhline(1000, color="red", linestyle="dashed", linewidth=1)
    ax.set_xticks(range(len(rates)), [f"{int(r):,} ev/s" for r in rates])
    ax.set_ylabel("ms, POST to row visible")
    ax.set_title("POST-to-row latency at fixed offered rates (dashed: 1 s)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    hop = document["celery_hop"]
    labels = ["direct baseline", "pipeline"]
    values = [hop.get("direct_eps") or 0.0, hop.get("pipeline_eps") or 0.0]
    bars = ax.bar(labels, values, color=["grey", "tab:blue"])
    ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=8)
    title = "Celery hop"
    if hop.get("ratio") is not None:
        title += f": pipeline / direct = {hop['ratio']:.3f} (target 0.60)"
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("events/s, Kafka to ClickHouse")

    ax = axes[1][1]
    rss = document["peak_rss_mb"]
    for i, (key, label) in enumerate((("max_process_mb", "largest process"), ("tree_sum_mb", "sum over tree"))):
        values = [rss[r][key] or 0.0 for r in ROLES]
        bars = ax.bar([x + (i - 0.5) * 0.4 for x in range(len(ROLES))], values, 0.4, label=label)
        ax.bar_label(bars, labels=[f"{v:.0f}" if v else "" for v in values], fontsize=8)
    ax.set_xticks(range(len(ROLES)), ROLES)
    ax.set_ylabel("MiB (VmHWM)")
    ax.set_title("Peak RSS")
    ax.legend(fontsize=8)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""The proxy benchmark's figures from its raw measurements: percentiles, added latency, calls/s,
CPU per call, ratios and the targets. Pure functions over plain data (tests/bench/test_proxy_report.py).

Latencies are in milliseconds rounded to the microsecond. A path's added latency is its percentile
minus the direct path's percentile over the same transport: two independent sample sets cannot be
paired call by call, and a percentile of differences would need exactly that. It is given pooled
over every round (the headline) and round by round, each path against the direct path of the same
round, so a reader sees how far the host's drift moved it. CPU ms per call is the figure a busy
host disturbs least: the time a path's processes ran, not how long they waited for a core. A
figure not measured is null, and a target whose figure is null has `"met": null`.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import Target, percentile, ratio, value_at, verdict

DIRECT = "direct"
MCP_PROXY = "mcp-proxy"
SENTINEL = "sentinel"
SENTINEL_URL = "sentinel-url"

# (numerator, denominator) of the calls/s ratios printed per transport.
RATIOS: tuple[tuple[str, str], ...] = (
    (SENTINEL, MCP_PROXY),
    (SENTINEL, DIRECT),
    (SENTINEL_URL, DIRECT),
    (MCP_PROXY, DIRECT),
)

TARGETS: tuple[Target, ...] = (
    Target(
        "stdio_p50_added_ms",
        "stdio: p50 of sentinel proxy minus p50 direct, ms",
        ("added_latency_ms", "stdio", SENTINEL, "p50"),
        "<=",
        0.5,
    ),
    Target(
        "stdio_p99_added_ms",
        "stdio: p99 of sentinel proxy minus p99 direct, ms",
        ("added_latency_ms", "stdio", SENTINEL, "p99"),
        "<=",
        2.0,
    ),
    Target(
        "http_p50_added_ms",
        "HTTP: p50 of sentinel proxy in front of the server's own HTTP (sentinel-url) minus p50 direct, ms",
        ("added_latency_ms", "http", SENTINEL_URL, "p50"),
        "<=",
        0.5,
    ),
    Target(
        "http_p99_added_ms",
        "HTTP: p99 of sentinel-url minus p99 direct, ms",
        ("added_latency_ms", "http", SENTINEL_URL, "p99"),
        "<=",
        2.0,
    ),
    Target(
        "http_calls_per_s_vs_mcp_proxy",
        "HTTP -> stdio server: sentinel proxy calls/s / mcp-proxy calls/s at saturation",
        ("ratios", "http", f"{SENTINEL}/{MCP_PROXY}", "calls_per_s"),
        ">=",
        1.0,
    ),
)


@dataclass(frozen=True)
class Measured:
    """One path's measurements in one round: sequential call latencies, calls/s at saturation, and
    CPU ms per call over both (of the path's proxy and server processes, and of the client)."""

    transport: str
    path: str
    round: int
    latencies_s: tuple[float, ...]
    calls_per_s: float | None
    server_cpu_ms_per_call: float | None = None
    client_cpu_ms_per_call: float | None = None


def latency_ms(latencies_s: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p99 and mean in ms (rounded to 0.001), null figures when there are no samples."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 3)

    return {
        "n": len(latencies_s),
        "p50": ms(percentile(latencies_s, 50.0)),
        "p99": ms(percentile(latencies_s, 99.0)),
        "mean": ms(statistics.fmean(latencies_s)) if latencies_s else None,
    }


def difference(minuend: float | None, subtrahend: float | None) -> float | None:
    """minuend - subtrahend rounded to 0.001, null when either is missing."""
    if minuend is None or subtrahend is None:
        return None
    return round(minuend - subtrahend, 3)


def added_latency(path: dict[str, Any], direct: dict[str, Any]) -> dict[str, float | None]:
    """p50 and p99 of a path's latency summary minus the direct path's."""
    return {q: difference(path.get(q), direct.get(q)) for q in ("p50", "p99")}


def median_or_none(values: Iterable[float | None], digits: int = 1) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), digits) if present else None


def summarize(measured: Sequence[Measured]) -> dict[str, Any]:
    """The figures of a run: latency, added latency, calls/s, CPU per call and ratios, per transport
    and path. CPU per call is the median over rounds; `server_side` is the path's proxy and the MCP
    server it runs, and `server_side_added` that minus the direct path's server.

    Paths appear in the order they were first measured; a ratio or added latency whose sides were
    not both measured is left out.
    """
    by_key: dict[tuple[str, str], list[Measured]] = {}
    for m in measured:
        by_key.setdefault((m.transport, m.path), []).append(m)
    transports = list(dict.fromkeys(t for t, _ in by_key))

    latency: dict[str, dict[str, Any]] = {}
    added: dict[str, dict[str, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}
    cpu: dict[str, dict[str, Any]] = {}
    ratios: dict[str, dict[str, Any]] = {}
    for transport in transports:
        paths = [p for t, p in by_key if t == transport]
        rounds = {p: {m.round: m for m in by_key[(transport, p)]} for p in paths}
        latency[transport] = {p: latency_ms([s for m in by_key[(transport, p)] for s in m.latencies_s]) for p in paths}
        calls[transport] = {
            p: {
                "median": median_or_none(m.calls_per_s for m in by_key[(transport, p)]),
                "rounds": [None if m.calls_per_s is None else round(m.calls_per_s, 1) for m in by_key[(transport, p)]],
            }
            for p in paths
        }
        cpu[transport] = {
            p: {
                "server_side": median_or_none([m.server_cpu_ms_per_call for m in by_key[(transport, p)]], 3),
                "client": median_or_none([m.client_cpu_ms_per_call for m in by_key[(transport, p)]], 3),
            }
            for p in paths
        }
        if DIRECT in paths:
            direct_cpu = cpu[transport][DIRECT]["server_side"]
            for p in paths:
                if p != DIRECT:
                    cpu[transport][p]["server_side_added"] = difference(cpu[transport][p]["server_side"], direct_cpu)
            direct_rounds = rounds[DIRECT]
            added[transport] = {}
            for p in paths:
                if p == DIRECT:
                    continue
                per_round = [
                    added_latency(latency_ms(m.latencies_s), latency_ms(direct_rounds[n].latencies_s))
                    for n, m in sorted(rounds[p].items())
                    if n in direct_rounds
                ]
                added[transport][p] = {
                    **added_latency(latency[transport][p], latency[transport][DIRECT]),
                    "rounds": per_round,
                }
        ratios[transport] = {}
        for numerator, denominator in RATIOS:
            if numerator not in paths or denominator not in paths:
                continue
            ratios[transport][f"{numerator}/{denominator}"] = {
                "calls_per_s": ratio(calls[transport][numerator]["median"], calls[transport][denominator]["median"]),
                "calls_per_s_rounds": [
                    ratio(m.calls_per_s, rounds[denominator][n].calls_per_s)
                    for n, m in sorted(rounds[numerator].items())
                    if n in rounds[denominator]
                ],
                "p50_latency": ratio(latency[transport][numerator]["p50"], latency[transport][denominator]["p50"]),
                "server_cpu_per_call": ratio(
                    cpu[transport][numerator]["server_side"], cpu[transport][denominator]["server_side"]
                ),
            }
    return {
        "latency_ms": latency,
        "added_latency_ms": added,
        "calls_per_s": calls,
        "cpu_ms_per_call": cpu,
        "ratios": ratios,
    }


def evaluate_targets(document: dict[str, Any], targets: Sequence[Target] = TARGETS) -> dict[str, dict[str, Any]]:
    """Each target's verdict (bench.report.verdict), with the figure round by round where the
    document has it."""
    return {t.name: verdict(t, value_at(document, t.path), _target_rounds(document, t)) for t in targets}


def _target_rounds(document: dict[str, Any], target: Target) -> list[float] | None:
    """An added latency's per-round figures, or a ratio's; None when the run had one round or none."""
    *parent, last = target.path
    holder = value_at(document, parent)
    if not isinstance(holder, dict):
        return None
    if target.path[0] == "added_latency_ms":
        rounds = [r.get(last) for r in holder.get("rounds") or []]
    else:
        rounds = holder.get(f"{last}_rounds") or []
    present = [r for r in rounds if r is not None]
    return present if len(present) > 1 else None


def build_document(
    *,
    machine: dict[str, Any],
    config: dict[str, Any],
    measured: Sequence[Measured],
    duration_s: float,
    errors: Sequence[str],
) -> dict[str, Any]:
    """The JSON document `python -m bench.proxy` prints: config, figures, targets, errors."""
    document: dict[str, Any] = {
        "benchmark": "proxy",
        "machine": machine,
        "config": config,
        **summarize(measured),
    }
    document["targets"] = evaluate_targets(document)
    document["duration_s"] = round(duration_s, 1)
    document["errors"] = list(errors)
    return document

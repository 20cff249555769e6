"""The measured scenarios: sustained throughput, latency at a fixed offered rate, and the warm-up.

Each scenario starts on a drained pipeline (bridge commits == log end), posts events of a type of
its own (`bench-<run>-<scenario>`), and returns a dict of figures and the details behind them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench import tables
from bench.cpu import MACHINE_FIGURES, CpuMeter
from bench.load import LoadResult, LoadSpec, probe_queue, run_load
from bench.native_load import run_native_load
from bench.observe import (
    Offsets,
    ProbeWatcher,
    count_distinct,
    inserted_rows,
    run_started_at,
    wait_count,
    wait_inserted,
)
from bench.report import latency_summary
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

BATCH = 100  # events per POST in batched mode and in the latency scenarios
# Probes are polled by primary key; each pending id costs ClickHouse a lookup in every part, so
# their number is kept small: ~50 new probes a second at a fixed rate, 1 in 1,000 (batched) or
# 1 in 100 (single) events at max speed, where they only tell when to start counting.
LATENCY_PROBES_PER_S = 50
THROUGHPUT_PROBE_EVERY = {"batched_100": 1000, "single_event": 100}
# While the load runs at max speed the watcher polls rarely (it competes with the pipeline for
# ClickHouse); once the load stops it polls often, because the end of the drain is the figure.
POLL_DURING_LOAD_S = 1.0
POLL_AFTER_LOAD_S = 0.05
LATENCY_POLL_S = 0.05  # see bench/observe.py for why not 20 ms


@dataclass(frozen=True)
class Sizes:
    """How long and how much; `--quick` and full mode differ only here."""

    throughput_s: float  # load time per throughput scenario, per round
    # Rounds of the tracing configurations (off, 10%, 100%; 10%, 100%, off; ...): the median of
    # each scenario's rounds counts, so a drift in the host's speed reaches every configuration,
    # and with three rounds one round at an odd moment of the host does not move the figure.
    throughput_rounds: int
    batched_max_events: int  # count bound per batched scenario (the time bound usually ends it first)
    single_max_events: int
    latency_s: float  # load time per offered rate
    celery_hop_events: int
    celery_hop_rounds: int  # each side runs this many times, alternating; the medians count
    warmup_s: float
    load_procs: int
    conns_per_proc: int  # keep-alive connections (threads) per load process
    drain_timeout_s: float
    visible_timeout_s: float  # after the load ends, how long rows may take to appear


QUICK = Sizes(
    throughput_s=2.5,
    throughput_rounds=1,
    batched_max_events=200_000,
    single_max_events=20_000,
    latency_s=2.5,
    celery_hop_events=20_000,
    celery_hop_rounds=1,
    warmup_s=1.0,
    load_procs=4,
    conns_per_proc=8,
    drain_timeout_s=60.0,
    visible_timeout_s=60.0,
)
FULL = Sizes(
    throughput_s=15.0,
    throughput_rounds=3,
    batched_max_events=2_000_000,
    single_max_events=200_000,
    latency_s=20.0,
    celery_hop_events=200_000,
    celery_hop_rounds=3,
    warmup_s=3.0,
    load_procs=4,
    conns_per_proc=8,
    drain_timeout_s=300.0,
    visible_timeout_s=300.0,
)


def log(message: str) -> None:
    """Progress on stderr; stdout carries only the JSON document."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Scenarios:
    def __init__(
        self, run_id: str, sizes: Sizes, url: str, offsets: Offsets, cpu: CpuMeter, *, native_load: bool = True
    ) -> None:
        self.run_id = run_id
        self.native_load = native_load
        self.sizes = sizes
        self.url = url
        self.offsets = offsets
        self.cpu = cpu
        self.client = new_client()

    def event_type(self, scenario: str) -> str:
        return f"bench-{self.run_id}-{scenario}"

    def drain(self) -> float:
        return self.offsets.wait_drained(self.sizes.drain_timeout_s)

    def clean_slate(self) -> float:
        """Drain, then empty the events table: the run pays for no earlier run's merges (bench/tables.py)."""
        drained_in = self.drain()
        tables.empty(self.client, QUALIFIED_EVENTS_TABLE)
        return drained_in

    def warmup(self, tracing: str) -> dict[str, Any]:
        """A short batched load so lazily created clients (each ingest worker's Kafka producer,
        each Celery child's ClickHouse connection) exist before anything is measured."""
        spec = LoadSpec(
            self.url,
            self.event_type(f"warmup-{tracing}"),
            BATCH,
            self.sizes.load_procs,
            conns=self.sizes.conns_per_proc,
            max_events=1_000_000,
            max_seconds=self.sizes.warmup_s,
            probe_every=0,
        )
        load = self._max_speed(spec, None)
        return {"load": load.as_dict(), "drain_s": round(self.drain(), 2)}

    def _max_speed(self, spec: LoadSpec, probes: Any | None) -> LoadResult:
        """A max-speed load, from the compiled generator unless the run asked for the Python one."""
        return run_native_load(spec, probes) if self.native_load else run_load(spec, probes)

    def throughput(self, mode: str, tracing: str) -> dict[str, Any]:
        """Post as fast as the `load_procs x conns_per_proc` connections allow for `throughput_s`, then
        time until every accepted event is a visible row: eps = accepted / (all visible - first POST)."""
        batch = BATCH if mode == "batched_100" else 1
        drained_in = self.clean_slate()
        spec = LoadSpec(
            self.url,
            self.event_type(f"{mode}-{tracing}"),
            batch,
            self.sizes.load_procs,
            conns=self.sizes.conns_per_proc,
            max_events=self.sizes.batched_max_events if batch > 1 else self.sizes.single_max_events,
            max_seconds=self.sizes.throughput_s,
            probe_every=THROUGHPUT_PROBE_EVERY[mode],
        )
        since = run_started_at()
        inserted_before = inserted_rows(self.client)
        probes = probe_queue()
        self.cpu.start()
        harness_cpu = time.process_time()
        # The watcher polls once a second throughout: its probes give a coarse latency under
        # saturation; the end of the run is found by the count below.
        with ProbeWatcher(probes, interval_s=POLL_DURING_LOAD_S, client=new_client()) as watcher:
            load = self._max_speed(spec, probes)
            # Where the events were when the posting stopped: which stage could not keep up.
            visible_at_load_end, _ = count_distinct(self.client, spec.event_type, since)
            kafka_lag_at_load_end = self.offsets.lag()
            if not load.events_accepted or load.first_send is None:
                raise RuntimeError(f"ingest accepted no events: {load.as_dict()}")
            # Exact counts scan the run's rows: they start once ClickHouse says enough were inserted.
            wait_inserted(self.client, inserted_before, load.events_accepted, timeout_s=self.sizes.visible_timeout_s)
            done_at, distinct, rows = wait_count(
                self.client,
                spec.event_type,
                load.events_accepted,
                since,
                timeout_s=self.sizes.visible_timeout_s,
                interval_s=POLL_AFTER_LOAD_S,
            )
            if done_at is None:
                raise RuntimeError(f"only {distinct} of {load.events_accepted} accepted events visible in time")
            cpu = self.cpu.since()
            cpu["harness"] = round(time.process_time() - harness_cpu, 2)
            watcher.interval_s = 0.1
            probes_seen = watcher.wait_all_seen(10.0)
        e2e_s = done_at - load.first_send
        eps = load.events_accepted / e2e_s
        cpu["load_generator"] = load.cpu_s
        log(
            f"{mode}/{tracing}: {eps:,.0f} events/s end to end ({load.events_accepted:,} events in {e2e_s:.2f}s; "
            f"ingest {load.as_dict()['ingest_eps']:,.0f}/s for {load.duration_s:.2f}s)"
        )
        return {
            "eps": round(eps, 1),
            "events_accepted": load.events_accepted,
            "end_to_end_s": round(e2e_s, 3),
            "visible_after_load_s": round(done_at - (load.last_done or done_at), 3),
            "visible_at_load_end": visible_at_load_end,
            "rows_per_s_during_load": round(visible_at_load_end / load.duration_s, 1),
            "kafka_lag_at_load_end": kafka_lag_at_load_end,
            "cpu_s": cpu,
            "cpu_ms_per_1k_events": per_1k(cpu, load.events_accepted),
            "rows": rows,
            "distinct": distinct,
            "load": load.as_dict(),
            "probes": {
                "registered": watcher.stats.registered,
                "all_seen": probes_seen,
                # Coarse: polled once a second while the load ran.
                "latency_under_max_load_ms": latency_summary(watcher.stats.latencies_s),
            },
            "drained_before_s": round(drained_in, 2),
        }

    def latency(self, rate: int) -> dict[str, Any]:
        """Offer `rate` events/s (batches of 100, open loop) for `latency_s`; about 50 events a
        second (1 in 10 at 500/s, 1 in 100 at 5,000/s) are probes whose POST-to-row time is measured."""
        drained_in = self.clean_slate()
        spec = LoadSpec(
            self.url,
            self.event_type(f"latency-{rate}"),
            BATCH,
            self.sizes.load_procs,
            conns=self.sizes.conns_per_proc,
            # The deadline ends it; the count bound only has to leave every connection whole batches.
            max_events=int(rate * self.sizes.latency_s * 1.1)
            + BATCH * self.sizes.load_procs * self.sizes.conns_per_proc,
            max_seconds=self.sizes.latency_s,
            rate_eps=float(rate),
            probe_every=latency_probe_every(rate),
        )
        probes = probe_queue()
        self.cpu.start()
        with ProbeWatcher(probes, interval_s=LATENCY_POLL_S, client=new_client()) as watcher:
            load = run_load(spec, probes)
            finished = time.monotonic()
            all_seen = watcher.wait_all_seen(self.sizes.visible_timeout_s)
            # A probe never seen counts with the time waited for it: a lower bound of its latency.
            unseen = [finished + self.sizes.visible_timeout_s - sent for sent in watcher.unseen_send_times()]
        samples = watcher.stats.latencies_s + unseen
        cpu = self.cpu.since()
        cpu["load_generator"] = load.cpu_s
        summary = latency_summary(samples)
        log(
            f"latency @ {rate:,}/s: p50 {summary['p50']} ms, p95 {summary['p95']} ms, p99 {summary['p99']} ms "
            f"({len(samples):,} probes, {len(unseen)} unseen, offered {load.as_dict()['ingest_eps']:,.0f}/s)"
        )
        return {
            **summary,
            "probes": len(samples),
            "probe_every": spec.probe_every,
            "unseen": len(unseen),
            "all_seen": all_seen,
            "max_ms": round(max(samples) * 1000.0, 1) if samples else None,
            "mean_poll_ms": round(watcher.stats.mean_poll_ms, 2),
            "load": load.as_dict(),
            "cpu_s": cpu,
            "drained_before_s": round(drained_in, 2),
        }


def sizes_dict(sizes: Sizes) -> dict[str, Any]:
    return asdict(sizes)


def latency_probe_every(rate_eps: float) -> int:
    """One probe in n events, n >= 10, so that about LATENCY_PROBES_PER_S probes are sent a second."""
    return max(10, round(rate_eps / LATENCY_PROBES_PER_S))


def per_1k(cpu_s: dict[str, float], events: int) -> dict[str, float]:
    """CPU milliseconds per 1,000 events for each role (not for the machine's figures)."""
    if not events:
        return {}
    return {role: round(1e6 * used / events, 1) for role, used in cpu_s.items() if role not in MACHINE_FIGURES}

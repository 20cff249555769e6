"""`python -m bench [--quick] [--out DIR] [--scenarios ...] [--tracing ...] [--baseline REF]`: benchmark the pipeline.

Brings up the services (reusing running ones) of the stack that SENTINEL_PORT_OFFSET and
SENTINEL_STACK_DIR select, then for each tracing configuration restarts ingest, bridge and worker and
runs the scenarios that need it; prints one JSON document on stdout (progress goes to stderr) and
writes it, with a PNG chart, to the output folder. Ingest, bridge and worker are put back as found.
With --baseline REF the same run is made on commit REF first, and each figure is also given as a
ratio to REF's (bench/baseline.py says how). See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

SCENARIOS = ("batched", "single", "latency", "celery_hop")
LOAD_GENERATORS = ("native", "python")
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def build_parser() -> argparse.ArgumentParser:
    from bench.pipeline import DEFAULT_TRACING, TRACING_CONFIGS

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: the whole run takes under 2 minutes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument(
        "--scenarios",
        type=_names(SCENARIOS),
        default=SCENARIOS,
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--tracing",
        type=_names(tuple(TRACING_CONFIGS)),
        default=DEFAULT_TRACING,
        help=f"comma-separated subset of {','.join(TRACING_CONFIGS)} for the throughput scenarios "
        f"(default: {','.join(DEFAULT_TRACING)}; tracing_off_control is tracing off measured a second time)",
    )
    parser.add_argument("--load-procs", type=int, default=None, help="load generator processes (default 4)")
    parser.add_argument("--conns", type=int, default=None, help="connections per load process (default 8)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternating rounds of the throughput scenarios (default 3, quick 1)"
    )
    parser.add_argument(
        "--load-generator",
        choices=LOAD_GENERATORS,
        default=LOAD_GENERATORS[0],
        help="what posts the max-speed loads: the compiled bench/loadgen (default) or bench/load.py's "
        "Python threads; fixed rates always use the Python one",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="also run the same scenarios on this commit (a git worktree under .bench/), first, and give "
        "each figure as a ratio to it",
    )
    return parser


def _names(allowed: tuple[str, ...]) -> Any:
    def parse(raw: str) -> tuple[str, ...]:
        names = tuple(n.strip() for n in raw.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}; got {raw!r}")
        return names

    return parse


def plan(scenarios: tuple[str, ...], tracing: tuple[str, ...], rounds: int = 1) -> list[tuple[str, list[str]]]:
    """(tracing config, scenarios run under it), in run order.

    Throughput runs under every chosen config, `rounds` times, the configs alternating: the host's
    speed drifts within minutes, and alternation spreads the drift over every config instead of
    one. Each round starts one config further on (off, 10%, 100%; then 10%, 100%, off; then 100%,
    off, 10%), so over as many rounds as configs each config runs once in each position, and a
    trend through the run (a broker warming up, a host slowing down) favours none. The control
    (tracing off again), when chosen, comes last in the first round. The Celery hop
    runs once, in the first round, under tracing off (the baseline has no tracing either; it
    alternates its own rounds), and latency once, in the last round, under 100% sampling (the
    production setting), each falling back to the first chosen config.
    """
    from bench.pipeline import SAMPLED_10, SAMPLED_100, TRACING_OFF, TRACING_OFF_CONTROL

    order = [t for t in (TRACING_OFF, SAMPLED_10, SAMPLED_100, TRACING_OFF_CONTROL) if t in tracing]
    hop_under = TRACING_OFF if TRACING_OFF in order else order[0]
    latency_under = SAMPLED_100 if SAMPLED_100 in order else order[0]
    steps = []
    for round_no in range(1, rounds + 1):
        shift = (round_no - 1) % len(order)
        for config in order[shift:] + order[:shift]:
            todo = [s for s in ("batched", "single") if s in scenarios]
            if "celery_hop" in scenarios and config == hop_under and round_no == 1:
                todo.append("celery_hop")
            if "latency" in scenarios and config == latency_under and round_no == rounds:
                todo.append("latency")
            if todo:
                steps.append((config, todo))
    return steps


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One throughput scenario over its rounds: the median events/s and CPU per role, every round kept."""
    cpu_roles = {role for result in results for role in result.get("cpu_ms_per_1k_events", {})}
    return {
        "eps": round(statistics.median(r["eps"] for r in results), 1),
        "cpu_ms_per_1k_events": {
            role: round(statistics.median(r["cpu_ms_per_1k_events"].get(role, 0.0) for r in results), 1)
            for role in sorted(cpu_roles)
        },
        "rounds": results,
    }


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu_model": None,
        "memory_gb": None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    from bench import tables

    # Before sentinel.settings is imported (build_parser imports it): the run's own database.
    found_env = tables.use_bench_database()
    args = build_parser().parse_args(argv)
    # Imported here: the stack and the pipeline read settings from the environment at import.
    from bench import baseline, direct, report, speed
    from bench.cpu import CpuMeter
    from bench.observe import Offsets
    from bench.pipeline import ROLES, Pipeline
    from bench.rss import PeakRss
    from bench.scenarios import FULL, QUICK, Scenarios, log, sizes_dict
    from sentinel import settings
    from sentinel_local import stack
    from workers.clickhouse.client import new_client, server_version
    from workers.clickhouse.schema import DATABASE, migrate

    against: tuple[str, dict[str, Any]] | None = None
    baseline_errors: list[str] = []
    if args.baseline:
        try:
            against = baseline.run(
                args.baseline,
                baseline.baseline_argv(sys.argv[1:] if argv is None else argv),
                repo=settings.REPO_ROOT,
                out=args.out / "baseline",
                env=baseline.environment(found_env, settings.STACK_DIR),
            )
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            log(f"baseline {args.baseline} FAILED: {exc}")
            baseline_errors.append(f"baseline {args.baseline}: {type(exc).__name__}: {exc}")

    started = time.monotonic()
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:4]
    sizes = QUICK if args.quick else FULL
    if args.load_procs or args.conns or args.rounds:
        sizes = type(sizes)(
            **{
                **sizes_dict(sizes),
                "load_procs": args.load_procs or sizes.load_procs,
                "conns_per_proc": args.conns or sizes.conns_per_proc,
                "throughput_rounds": args.rounds or sizes.throughput_rounds,
            }
        )
    steps = plan(args.scenarios, args.tracing, sizes.throughput_rounds)
    log(f"run {run_id} ({'quick' if args.quick else 'full'}) on stack {settings.STACK_DIR}: {steps}")

    stack.up(echo=False)
    client = new_client()
    migrate(client)
    machine = machine_info()
    machine["clickhouse_version"] = ".".join(map(str, server_version(client)))
    machine["speed_probe_ms_at_start"] = speed.probe_ms()
    offsets = Offsets()
    pipeline = Pipeline(found_env)
    peaks = PeakRss()
    services = {name: stack.get(name) for name in ("kafka", "clickhouse", "rabbitmq", "redis", "jaeger")}
    cpu = CpuMeter(
        lambda: {
            **{role: pipeline.pid(role) for role in ROLES},
            **{name: service.pid() for name, service in services.items()},
        }
    )
    scenarios = Scenarios(run_id, sizes, settings.INGEST_URL, offsets, cpu, native_load=args.load_generator == "native")

    throughput: dict[str, dict[str, float | None]] = {}
    latency: dict[str, dict[str, float | None]] = {}
    celery_hop: dict[str, Any] | None = None
    details: dict[str, Any] = {
        "throughput": {},
        "latency": {},
        "restarts_s": {},
        "warmup": {},
        "span_drop_warnings": {},
        # bench/speed.py: CPU ms of a fixed loop just before each scenario; higher is a slower host.
        "speed_probe_ms": {},
    }
    errors: list[str] = list(baseline_errors)

    def sample_rss() -> None:
        peaks.sample({role: pipeline.pid(role) for role in ROLES})

    def attempt(name: str, call: Any) -> Any:
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others
            log(f"{name} FAILED: {exc}")
            traceback.print_exc(file=sys.stderr)
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            result = None
        sample_rss()
        return result

    rounds_of: dict[tuple[str, str], list[dict[str, Any]]] = {}
    seen: dict[str, int] = {}
    try:
        for tracing, todo in steps:
            seen[tracing] = seen.get(tracing, 0) + 1
            # With several rounds, per-round details are keyed "config#round".
            key = tracing if sizes.throughput_rounds == 1 else f"{tracing}#{seen[tracing]}"
            log(f"restarting ingest, bridge, worker with {tracing} (round {seen[tracing]})")
            restart_s = attempt(f"restart/{key}", lambda t=tracing: pipeline.start(t))
            if restart_s is None:
                continue  # the scenarios under this configuration stay null; the error says why
            details["restarts_s"][key] = round(restart_s, 2)
            details["warmup"][key] = attempt(f"warmup/{key}", lambda t=tracing: scenarios.warmup(t))
            for scenario in todo:
                probe = speed.probe_ms()
                details["speed_probe_ms"][f"{scenario}/{key}"] = probe
                log(f"speed probe before {scenario}/{key}: {probe} ms (a fixed loop's CPU time)")
                if scenario in ("batched", "single"):
                    mode = "batched_100" if scenario == "batched" else "single_event"
                    result = attempt(f"{mode}/{key}", lambda m=mode, t=tracing: scenarios.throughput(m, t))
                    measured = rounds_of.setdefault((mode, tracing), [])
                    if result:
                        # The rotation it ran in: report.round_figures pairs configurations by it.
                        measured.append({"round": seen[tracing], **result})
                    summary = median_result(measured) if measured else None
                    throughput.setdefault(mode, {})[tracing] = summary["eps"] if summary else None
                    details["throughput"].setdefault(mode, {})[tracing] = summary
                elif scenario == "latency":
                    for rate in (500, 2000, 5000):
                        result = attempt(f"latency/{rate}", lambda r=rate: scenarios.latency(r))
                        latency[str(rate)] = result or {}
                        details["latency"][str(rate)] = {"tracing": tracing, **(result or {})}
                elif scenario == "celery_hop":
                    log(
                        f"celery hop: {sizes.celery_hop_events:,} events, direct baseline then pipeline, "
                        f"{sizes.celery_hop_rounds} round(s) ({tracing})"
                    )
                    celery_hop = attempt(
                        "celery_hop",
                        lambda: direct.run(
                            offsets,
                            cpu,
                            sizes.celery_hop_events,
                            scenarios.event_type("celery_hop"),
                            rounds=sizes.celery_hop_rounds,
                            drain_timeout_s=sizes.drain_timeout_s,
                            timeout_s=sizes.visible_timeout_s,
                        ),
                    )
                    if celery_hop:
                        celery_hop["pipeline_tracing"] = tracing
                        log(
                            f"celery hop: direct {celery_hop['direct_eps']:,.0f}/s, pipeline "
                            f"{celery_hop['pipeline_eps']:,.0f}/s (medians), ratio {celery_hop['ratio']} "
                            f"(rounds: {celery_hop['round_ratios']})"
                        )
            details["span_drop_warnings"][key] = _span_drop_warnings()
    finally:
        log("restoring ingest, bridge, worker as found")
        try:
            pipeline.restore()
        except Exception as exc:  # noqa: BLE001 - the figures are still worth printing
            errors.append(f"restore: {exc}")

    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    machine["speed_probe_ms_at_end"] = speed.probe_ms()
    config = {
        "run_id": run_id,
        "mode": "quick" if args.quick else "full",
        "scenarios": list(args.scenarios),
        "tracing_configs": list(args.tracing),
        "latency_tracing": next((t for t, todo in steps if "latency" in todo), None),
        "sizes": sizes_dict(sizes),
        "max_speed_load_generator": args.load_generator,
        **_fixed_config(),
        "topic_partitions": len(offsets.partitions()),
        "clickhouse_database": DATABASE,
        "tables_emptied_before_each_run": True,
    }
    document = report.build_document(
        machine=machine,
        config=config,
        throughput=throughput,
        latency=latency,
        celery_hop=celery_hop,
        peak_rss=peaks.summary_mb(),
        duration_s=time.monotonic() - started,
        details=details,
        errors=errors,
    )
    if against is not None:
        commit, baseline_document = against
        document["baseline"] = {
            "ref": args.baseline,
            "commit": commit,
            "ratios": baseline.compare(document, baseline_document),
            "document": baseline_document,
        }
    json_path = args.out / f"bench-{run_id}.json"
    try:
        report.write_chart(document, json_path.with_suffix(".png"))
    except Exception as exc:  # noqa: BLE001 - the JSON is the result; the chart is a view of it
        document["errors"].append(f"chart: {type(exc).__name__}: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    for line in report.target_lines(document["targets"]):
        log(line)
    if document["baseline"]:
        for line in baseline.ratio_lines(document["baseline"]["ratios"]):
            log(line)
    log(f"wrote {json_path} (and its .png) in {time.monotonic() - started:.0f}s")
    print(json.dumps(document, indent=2))
    return 1 if document["errors"] else 0


def _fixed_config() -> dict[str, Any]:
    """What the harness and the pipeline were configured with, beyond the run's own choices."""
    from bench.scenarios import (
        BATCH,
        LATENCY_POLL_S,
        POLL_AFTER_LOAD_S,
        POLL_DURING_LOAD_S,
        THROUGHPUT_PROBE_EVERY,
        latency_probe_every,
    )
    from sentinel import settings
    from sentinel_local import ingest_serve, processes

    ingest = processes.get("ingest")
    return {
        "events_per_batched_post": BATCH,
        "events_per_latency_post": BATCH,
        "probe_every": {
            **{f"latency_{rate}": latency_probe_every(rate) for rate in (500, 2000, 5000)},
            **THROUGHPUT_PROBE_EVERY,
        },
        "probe_poll_s": {"latency": LATENCY_POLL_S, "during_load": POLL_DURING_LOAD_S, "after_load": POLL_AFTER_LOAD_S},
        "commit": _commit(settings.REPO_ROOT),
        "stack_dir": str(settings.STACK_DIR),
        "port_offset": settings.PORT_OFFSET,
        "ingest_url": settings.INGEST_URL,
        "ingest_server": " ".join(ingest_serve.app_server_argv(ingest.upstreams[0])[1:]),
        "ingest_argv": " ".join(ingest.argv()),
        "worker_concurrency": settings.WORKER_CONCURRENCY,
        "chunk_max_events": settings.CHUNK_MAX_EVENTS,
        "chunk_max_bytes": settings.CHUNK_MAX_BYTES,
        "chunk_max_wait_s": settings.CHUNK_MAX_WAIT_S,
        "chunk_max_idle_s": settings.CHUNK_MAX_IDLE_S,
        "max_inflight_chunks": settings.MAX_INFLIGHT_CHUNKS,
    }


def _commit(repo: Path) -> str | None:
    """The commit measured, with "+changes" when the tree differs from it; None outside git."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _span_drop_warnings() -> dict[str, int]:
    """Lines where the OTel SDK said it dropped spans (its queue was full), per role's current log.

    The SDK logs this once per repeated burst, so a count above zero means spans were lost, not how many.
    """
    from sentinel_local import processes

    out = {}
    for role in ("ingest", "bridge", "worker"):
        try:
            text = processes.get(role).log_path.read_text(errors="replace")
        except OSError:
            continue
        out[role] = text.count("Queue full, dropping")
    return out


if __name__ == "__main__":
    sys.exit(main())

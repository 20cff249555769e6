"""The Collector built here (sentinel_local/stack/otelcol.py) on the k8s config: it validates, it holds
exactly the components that config names, and its tail-sampling policies keep what the config says.

The sampling test runs a second Collector of its own with the same config, baseline 0 %, beside the
stack's (baseline 100 %, as the laptop overlay), both exporting to the stack's Jaeger, and sends each
a set of hand-made traces: an error, a slow one, an insert, one just under the latency threshold,
and ordinary ones. Each Collector holds a trace for the config's decision_wait (10 s) before it
decides, so the test waits that long.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from sentinel import semconv, settings
from sentinel_cli.jaeger import JaegerClient
from sentinel_local import stack
from sentinel_local.stack.otelcol import K8S_CONFIG, MANIFEST, CollectorPorts, Otelcol

K8S_DEPLOYMENT = settings.REPO_ROOT / "k8s" / "base" / "otel-collector.yaml"
SLOW_MS = settings.OTELCOL_SLOW_TRACE_THRESHOLD_MS
# What a Collector waits before deciding (the config's decision_wait), plus its batch timeout and
# Jaeger's indexing.
_DECIDED_WITHIN_S = 40.0


def _collector() -> Otelcol:
    collector = stack.get("otelcol")
    assert isinstance(collector, Otelcol)
    return collector


def _deployment_env() -> dict[str, str]:
    """The tail-sampling knobs the k8s Deployment gives the Collector."""
    deployment = yaml.safe_load(K8S_DEPLOYMENT.read_text().split("\n---\n")[0])
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_collector().binary), "validate", f"--config=file:{config}"],
        env={"PATH": "/usr/bin:/bin", **_deployment_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_k8s_config_passes_the_collectors_validate() -> None:
    done = _validate(K8S_CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr


def test_validate_refuses_a_config_naming_a_component_the_build_lacks(tmp_path: Path) -> None:
    # The same check on a config with a processor the build leaves out: validate does look.
    config = yaml.safe_load(K8S_CONFIG.read_text())
    config["processors"]["probabilistic_sampler"] = {"sampling_percentage": 5}
    config["service"]["pipelines"]["traces"]["processors"].insert(0, "probabilistic_sampler")
    broken = tmp_path / "config.yaml"
    broken.write_text(yaml.safe_dump(config))
    done = _validate(broken)
    assert done.returncode != 0
    assert "probabilistic_sampler" in done.stdout + done.stderr


def test_the_build_holds_exactly_the_components_the_k8s_config_names() -> None:
    done = subprocess.run(
        [str(_collector().binary), "components"], capture_output=True, text=True, timeout=60, check=True
    )
    built = yaml.safe_load(done.stdout)
    config = yaml.safe_load(K8S_CONFIG.read_text())
    for kind in ("receivers", "processors", "exporters", "extensions"):
        have = {c["name"] for c in built.get(kind) or []}
        named = {key.split("/", 1)[0] for key in config.get(kind) or {}}
        assert have == named, f"{kind}: built {sorted(have)}, the config names {sorted(named)}"
    release = yaml.safe_load(MANIFEST.read_text())["dist"]["version"]
    assert built["buildinfo"]["version"] == release
    # The k8s Deployment runs the same release.
    assert f":{release}" in K8S_DEPLOYMENT.read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((settings.HOST, 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def dropping_collector() -> Iterator[Otelcol]:
    """A second Collector on the k8s config that keeps no ordinary trace (baseline 0 %)."""
    ports = CollectorPorts(otlp_grpc=_free_port(), otlp_http=_free_port(), health=_free_port(), metrics=_free_port())
    collector = Otelcol(name="otelcol-baseline-0", ports=ports, baseline_percent=0)
    collector.up()
    yield collector
    collector.down()


def _send_traces(collector: Otelcol, service: str) -> dict[str, str]:
    """One trace of each kind, through `collector`; returns kind -> trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    endpoint = f"http://{settings.HOST}:{collector.ports.otlp_http}/v1/traces"
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    tracer = provider.get_tracer("sentinel-sampling-test")
    now = time.time_ns()
    ids: dict[str, str] = {}

    def trace_of(kind: str, name: str, duration_ms: float, error: bool = False) -> None:
        span = tracer.start_span(name, start_time=now)
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=now + int(duration_ms * 1_000_000))
        ids[kind] = f"{span.get_span_context().trace_id:032x}"

    trace_of("error", "sampling: error", 5, error=True)
    trace_of("slow", "sampling: slow", SLOW_MS * 1.5)
    trace_of("under_threshold", "sampling: almost slow", SLOW_MS * 0.5)
    trace_of("insert", semconv.SPAN_INSERT, 5)
    for n in range(5):
        trace_of(f"ordinary-{n}", "sampling: ordinary", 5)
    provider.shutdown()
    return ids


def _arrived(jaeger: JaegerClient, ids: dict[str, str]) -> dict[str, bool]:
    return {kind: bool(jaeger.trace(trace_id)) for kind, trace_id in ids.items()}


def _wait_for_kinds(jaeger: JaegerClient, ids: dict[str, str], kinds: set[str]) -> dict[str, bool]:
    deadline = time.monotonic() + _DECIDED_WITHIN_S
    arrived = _arrived(jaeger, ids)
    while not all(arrived[k] for k in kinds) and time.monotonic() < deadline:
        time.sleep(1)
        arrived = _arrived(jaeger, ids)
    # Whatever else was kept was decided in the same round, and exported with the same batch.
    time.sleep(6)
    return _arrived(jaeger, ids)


def test_tail_sampling_keeps_errors_slow_traces_and_inserts_and_drops_the_rest_at_baseline_0(
    dropping_collector: Otelcol,
) -> None:
    ids = _send_traces(dropping_collector, f"sentinel-sampling-0-{uuid.uuid4().hex[:6]}")
    arrived = _wait_for_kinds(JaegerClient(), ids, {"error", "slow", "insert"})
    kept = {kind for kind, ok in arrived.items() if ok}
    assert kept == {"error", "slow", "insert"}, arrived


def test_tail_sampling_keeps_every_trace_at_the_local_baseline_of_100() -> None:
    collector = _collector()
    assert collector.baseline_percent == 100, "the local stack keeps every trace (settings.py)"
    ids = _send_traces(collector, f"sentinel-sampling-100-{uuid.uuid4().hex[:6]}")
    arrived = _wait_for_kinds(JaegerClient(), ids, set(ids))
    assert all(arrived.values()), arrived

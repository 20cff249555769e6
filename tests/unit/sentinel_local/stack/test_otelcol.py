"""The local Collector runs the k8s config with a second config over it that changes only addresses."""

from __future__ import annotations

import pytest
import yaml

from sentinel import settings
from sentinel_local.processes import process_env
from sentinel_local.stack.otelcol import K8S_CONFIG, CollectorPorts, Otelcol, local_overrides


def _leaves(tree: object, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, (*path, str(key))).items()}
    return {path: tree}


def test_the_overrides_change_addresses_only() -> None:
    ports = CollectorPorts(otlp_grpc=1, otlp_http=2, health=3, metrics=4)
    overrides = yaml.safe_load(local_overrides(ports))
    assert "processors" not in overrides
    assert "pipelines" not in overrides["service"]
    for path in _leaves(overrides):
        assert path[-1] in {"endpoint", "readers"}, path
    shared = yaml.safe_load(K8S_CONFIG.read_text())
    # The exporter overridden is the k8s pipeline's own, pointed at the local Jaeger.
    (exporter,) = shared["service"]["pipelines"]["traces"]["exporters"]
    assert overrides["exporters"] == {exporter: {"endpoint": f"{settings.HOST}:{settings.JAEGER_OTLP_GRPC_PORT}"}}
    assert overrides["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == f"{settings.HOST}:2"


def test_it_runs_the_k8s_file_and_the_overrides() -> None:
    collector = Otelcol()
    argv = collector.argv()
    assert argv[1:] == [f"--config=file:{K8S_CONFIG}", f"--config=file:{collector.overrides_path}"]
    env = collector.env()
    assert env["BASELINE_SAMPLING_PERCENT"] == "100"
    assert env["SLOW_TRACE_THRESHOLD_MS"] == str(settings.OTELCOL_SLOW_TRACE_THRESHOLD_MS)


def test_every_process_exports_to_the_collector_not_to_jaeger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    endpoint = process_env()["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == f"http://{settings.HOST}:{settings.OTELCOL_OTLP_HTTP_PORT}"

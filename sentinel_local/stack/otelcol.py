"""The OpenTelemetry Collector in the local trace path: every process -> Collector -> Jaeger.

It is built once with the Collector Builder (ocb) from `otelcol-builder.yaml`, which names only the
components of k8s/base/config/otel-collector.yaml, and runs that very file. A second config, merged
over it, changes only addresses (listeners on loopback ports, Jaeger's OTLP port where k8s has
Tempo), so what is tested here is the pipeline production runs: memory limiter, tail sampling, batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sentinel import settings
from sentinel_local.stack.runner import Service, run_checked

MANIFEST = Path(__file__).with_name("otelcol-builder.yaml")
#: the Collector configuration k8s deploys (the ConfigMap otel-collector-config)
K8S_CONFIG = settings.REPO_ROOT / "k8s" / "base" / "config" / "otel-collector.yaml"


def release() -> str:
    """The Collector release of the manifest (dist.version): its components' and the builder's."""
    import yaml

    return str(yaml.safe_load(MANIFEST.read_text())["dist"]["version"])


@dataclass(frozen=True)
class CollectorPorts:
    """Where one Collector listens on loopback."""

    otlp_grpc: int = settings.OTELCOL_OTLP_GRPC_PORT
    otlp_http: int = settings.OTELCOL_OTLP_HTTP_PORT
    health: int = settings.OTELCOL_HEALTH_PORT
    metrics: int = settings.OTELCOL_METRICS_PORT


class Otelcol(Service):
    """The stack's Collector; a test may run another (`name`, `ports`, `baseline_percent`) beside it."""

    start_timeout = 60.0

    def __init__(
        self,
        *,
        name: str = "otelcol",
        ports: CollectorPorts | None = None,
        baseline_percent: float | None = None,
    ) -> None:
        self.name = name
        self.ports = ports or CollectorPorts()
        self.baseline_percent = (
            settings.OTELCOL_BASELINE_SAMPLING_PERCENT if baseline_percent is None else baseline_percent
        )

    @property
    def port(self) -> int:  # type: ignore[override]
        return self.ports.otlp_http

    @property
    def binary(self) -> Path:
        # Shared by every Collector of this stack, and named by its release: a new manifest builds anew.
        return settings.STACK_DIR / "otelcol" / "bin" / f"otelcol-sentinel-{release()}"

    @property
    def overrides_path(self) -> Path:
        return self.home / "local.yaml"

    def installed(self) -> bool:
        return self.binary.exists()

    def install(self) -> None:
        version = release()
        build = self.binary.parent.parent / "build"
        build.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(build / "bin")}
        print(f"otelcol: building the OpenTelemetry Collector {version} with ocb (about 2-3 min)", flush=True)
        run_checked(
            ["go", "install", f"go.opentelemetry.io/collector/cmd/builder@v{version}"],
            "otelcol: go install the collector builder",
            env=env,
            log=self.log_path,
        )
        (build / "manifest.yaml").write_text(MANIFEST.read_text())
        run_checked(
            [str(build / "bin" / "builder"), "--config", "manifest.yaml"],
            "otelcol: ocb build",
            cwd=build,
            env=env,
            log=self.log_path,
        )
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        (build / "dist" / "otelcol-sentinel").replace(self.binary)

    def prepare(self) -> None:
        self.overrides_path.write_text(local_overrides(self.ports))

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            # The knobs k8s/base/otel-collector.yaml sets for the same config.
            "SLOW_TRACE_THRESHOLD_MS": str(settings.OTELCOL_SLOW_TRACE_THRESHOLD_MS),
            "BASELINE_SAMPLING_PERCENT": f"{self.baseline_percent:g}",
            "GOMEMLIMIT": os.environ.get("GOMEMLIMIT", "400MiB"),
        }

    def argv(self) -> list[str]:
        return [str(self.binary), f"--config=file:{K8S_CONFIG}", f"--config=file:{self.overrides_path}"]

    def ready(self) -> bool:
        import requests

        try:
            return requests.get(f"http://{settings.HOST}:{self.ports.health}/", timeout=2).ok
        except requests.RequestException:
            return False

    def addresses(self) -> dict[str, str]:
        return {
            "otlp-grpc": f"{settings.HOST}:{self.ports.otlp_grpc}",
            "otlp-http": f"http://{settings.HOST}:{self.ports.otlp_http}",
            "to": f"{settings.HOST}:{settings.JAEGER_OTLP_GRPC_PORT} (jaeger)",
        }


def local_overrides(ports: CollectorPorts) -> str:
    """The config merged over the k8s one: the same pipeline, with loopback listeners and Jaeger as
    the backend. The exporter is the k8s pipeline's own, by name."""
    import yaml

    shared = yaml.safe_load(K8S_CONFIG.read_text())
    (exporter,) = shared["service"]["pipelines"]["traces"]["exporters"]
    host = settings.HOST
    overrides = {
        "extensions": {"health_check": {"endpoint": f"{host}:{ports.health}"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"{host}:{ports.otlp_grpc}"},
                    "http": {"endpoint": f"{host}:{ports.otlp_http}"},
                }
            }
        },
        "exporters": {exporter: {"endpoint": f"{host}:{settings.JAEGER_OTLP_GRPC_PORT}"}},
        "service": {
            "telemetry": {
                "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": host, "port": ports.metrics}}}}]}
            }
        },
    }
    return yaml.safe_dump(overrides, sort_keys=False)

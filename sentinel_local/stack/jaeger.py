"""Jaeger v2 all-in-one, built once from its Go module: OTLP in, query API out, memory storage."""

from __future__ import annotations

import os
from pathlib import Path

from sentinel import settings
from sentinel_local.stack.runner import Service, run_checked

JAEGER_MODULE = "github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0"


class Jaeger(Service):
    name = "jaeger"
    start_timeout = 60.0

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.JAEGER_QUERY_PORT

    @property
    def binary(self) -> Path:
        return self.home / "bin" / "jaeger"

    def installed(self) -> bool:
        return self.binary.exists()

    def install(self) -> None:
        # `go install pkg@version` refuses modules with replace directives, so build it as a
        # tool dependency of a throwaway module, which is what the Go module proxy serves.
        build = self.home / "build"
        build.mkdir(parents=True, exist_ok=True)
        (build / "go.mod").write_text("module sentinel/jaeger-build\n\ngo 1.25\n")
        env = {**os.environ, "GOBIN": str(self.binary.parent), "GOFLAGS": "-mod=mod"}
        run_checked(["go", "get", "-tool", JAEGER_MODULE], "jaeger: go get", cwd=build, env=env, log=self.log_path)
        run_checked(["go", "install", "tool"], "jaeger: go install", cwd=build, env=env, log=self.log_path)

    def prepare(self) -> None:
        host = settings.HOST
        (self.home / "config.yaml").write_text(f"""\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info

extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{host}:{settings.JAEGER_HEALTH_PORT}"
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "{host}:{settings.JAEGER_QUERY_PORT}"
    grpc:
      endpoint: "{host}:{settings.JAEGER_GRPC_QUERY_PORT}"
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 200000

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "{host}:{settings.JAEGER_OTLP_GRPC_PORT}"
      http:
        endpoint: "{host}:{settings.JAEGER_OTLP_HTTP_PORT}"

processors:
  batch:

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
""")

    def env(self) -> dict[str, str]:
        env = super().env()
        # The memory store keeps every trace on Go's heap (up to max_traces: ~1 GB), and each GC
        # cycle marks all of it. At the default GOGC=100 that was a cycle every ~26 s at 1,700
        # traced events/s, ~2 CPU-s each; 400 makes them about 4x rarer, and GOMEMLIMIT bounds the
        # heap that buys. Either can be set in the environment instead.
        env.setdefault("GOGC", "400")
        env.setdefault("GOMEMLIMIT", "4GiB")
        return env

    def argv(self) -> list[str]:
        return [str(self.binary), "--config", str(self.home / "config.yaml")]

    def ready(self) -> bool:
        import requests

        try:
            return requests.get(f"{settings.JAEGER_QUERY_URL}/api/services", timeout=2).ok
        except requests.RequestException:
            return False

    def addresses(self) -> dict[str, str]:
        return {
            "otlp-grpc": f"{settings.HOST}:{settings.JAEGER_OTLP_GRPC_PORT}",
            "otlp-http": f"http://{settings.HOST}:{settings.JAEGER_OTLP_HTTP_PORT}",
            "ui": settings.JAEGER_QUERY_URL,
        }

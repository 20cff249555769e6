"""The Kubernetes manifests in k8s/, checked offline.

Both kustomizations build; every document validates strictly against a pinned Kubernetes API;
every workload is probed, sized and runs non-root on a read-only root filesystem; ingest's pod
runs its WSGI server (granian, `python -m ingest_app.server`) behind an nginx sidecar configured as
the local stack's nginx; and every environment variable the code reads is set on each Sentinel
container by the ConfigMap or a Secret reference, or is listed below as deliberately left to its
default, with the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
INSTALL_SCRIPT = K8S / "tools" / "install.sh"
KUSTOMIZATIONS = ("base", "overlays/laptop")

# The oldest Kubernetes minor still supported upstream when this was written; the manifests use
# only APIs that are stable there (apps/v1, autoscaling/v2, policy/v1, networking.k8s.io/v1).
KUBERNETES_VERSION = "1.35.0"

SENTINEL_CONTAINERS = ("ingest", "bridge", "worker", "beat", "flower")
# ingest's front door, a second container in the ingest pod (sentinel_local/processes.py, nginx_config).
NGINX_SIDECAR = "nginx"
NGINX_CONFIGMAP = "ingest-nginx"
NGINX_CONFIG_FILE = K8S / "base" / "config" / "nginx" / "ingest.conf"
# Where the sidecar's nginx may differ from the local one: files it writes, under its /tmp emptyDir.
NGINX_PATH_DIRECTIVES = (
    "pid",
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
CONFIGMAP = "sentinel-config"

# Variables that come from a Secret: (secret, key, the Sentinel containers that get it).
SECRET_ENV: dict[str, tuple[str, str, frozenset[str]]] = {
    "SENTINEL_CELERY_BROKER_URL": (
        "sentinel-rabbitmq",
        "broker-url",
        frozenset({"bridge", "worker", "beat", "flower"}),
    ),
    "SENTINEL_REDIS_URL": ("sentinel-redis", "url", frozenset({"bridge", "worker", "beat", "flower"})),
    # ingest checks the tokens; the worker runs the canary, which posts with the first one.
    "SENTINEL_INGEST_TOKENS": ("sentinel-ingest", "tokens", frozenset({"ingest", "worker"})),
    "SENTINEL_FLOWER_BASIC_AUTH": ("sentinel-flower", "basic-auth", frozenset({"flower"})),
    # Only the worker connects to ClickHouse (inserts, migrations, the canary's lookups).
    "SENTINEL_CLICKHOUSE_PASSWORD": ("sentinel-clickhouse", "sentinel-password", frozenset({"worker"})),
}

# Read by the code, deliberately not set in the cluster.
DEFAULTED: dict[str, str] = {
    "SENTINEL_STACK_DIR": "where `sentinel stack` keeps the local services; nothing in the cluster runs them",
    "SENTINEL_PORT_OFFSET": "shifts the local stack's default ports; the cluster sets each port and address it uses",
    "SENTINEL_KAFKA_PORT": "only builds the default SENTINEL_KAFKA_BOOTSTRAP, which the ConfigMap sets outright",
    "SENTINEL_KAFKA_BROKERS": "the local cluster's size; the cluster's is kafka.yaml's replicas",
    "SENTINEL_KAFKA_CONTROLLER_PORT": "the local broker's controller listener; the cluster's is in server.properties",
    "SENTINEL_CLICKHOUSE_HTTP_PORT": "the local ClickHouse's HTTP listener; the processes speak the native protocol",
    "SENTINEL_RABBITMQ_PORT": "only builds the default broker URL, which comes whole from a Secret",
    "SENTINEL_RABBITMQ_DIST_PORT": "the local RabbitMQ's distribution port",
    "SENTINEL_REDIS_PORT": "only builds the default SENTINEL_REDIS_URL, which comes whole from a Secret",
    "SENTINEL_JAEGER_OTLP_GRPC_PORT": "local Jaeger; in the cluster spans go to OTEL_EXPORTER_OTLP_ENDPOINT",
    "SENTINEL_JAEGER_OTLP_HTTP_PORT": "local Jaeger; in the cluster spans go to OTEL_EXPORTER_OTLP_ENDPOINT",
    "SENTINEL_JAEGER_QUERY_PORT": "local Jaeger's query port; the cluster has Tempo, read through Grafana",
    "SENTINEL_JAEGER_QUERY_URL": "`sentinel trace` reads local Jaeger's API; the cluster's traces are in Tempo",
    "SENTINEL_JAEGER_GRPC_QUERY_PORT": "local Jaeger's gRPC query port; the cluster has Tempo",
    "SENTINEL_JAEGER_HEALTH_PORT": "local Jaeger's health port; the cluster has Tempo",
    "SENTINEL_OTELCOL_OTLP_GRPC_PORT": "the local Collector's OTLP port; in the cluster, otel-collector:4317",
    "SENTINEL_OTELCOL_OTLP_HTTP_PORT": "the local Collector's OTLP port; the processes use OTEL_EXPORTER_OTLP_ENDPOINT",
    "SENTINEL_OTELCOL_HEALTH_PORT": "the local Collector's health port; the cluster's is in its config",
    "SENTINEL_OTELCOL_METRICS_PORT": "the local Collector's metrics port; the cluster's is in its config",
    "SENTINEL_OTELCOL_SLOW_TRACE_THRESHOLD_MS": "the local Collector's knob; k8s/base/otel-collector.yaml sets it",
    "SENTINEL_OTELCOL_BASELINE_SAMPLING_PERCENT": "the local Collector's knob; k8s/base/otel-collector.yaml sets it",
    "OTEL_SERVICE_NAME": "each process names itself (sentinel-ingest, -bridge, ...); one shared value would merge them",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "falls back to OTEL_EXPORTER_OTLP_PROTOCOL, which the ConfigMap sets",
    # The MCP proxy's emitter runs where the proxy runs, beside MCP clients, not in the pipeline's pods.
    "SENTINEL_PROXY_INGEST_URL": "the ingest the proxy posts to, set where the proxy runs",
    "SENTINEL_PROXY_INGEST_TOKEN": "the proxy's own credential for ingest, set where the proxy runs",
    "SENTINEL_PROXY_DATA_DIR": "the proxy's spool folder, on the proxy's host",
    "XDG_DATA_HOME": "the default of SENTINEL_PROXY_DATA_DIR, on the proxy's host",
    "SENTINEL_PROXY_SPOOL_MAX_BYTES": "the proxy's spool bound, on the proxy's host",
    "SENTINEL_PROXY_SPOOL_FULL": "what the proxy's full spool drops, set where the proxy runs",
    "SENTINEL_PROXY_BATCH_MAX_EVENTS": "the proxy's audit batches, set where the proxy runs",
    "SENTINEL_PROXY_BATCH_MAX_S": "the proxy's audit batches, set where the proxy runs",
    "SENTINEL_PROXY_QUEUE_MAX": "the proxy's audit queue bound, set where the proxy runs",
    "SENTINEL_PROXY_RETRY_MIN_S": "the proxy's retry backoff, set where the proxy runs",
    "SENTINEL_PROXY_RETRY_MAX_S": "the proxy's retry backoff, set where the proxy runs",
    "SENTINEL_PROXY_POST_TIMEOUT_S": "the proxy's POST /events timeout, set where the proxy runs",
    "SENTINEL_MCP_PEERS_DIR": "where the tests and the demo install the MCP servers they run; not in the cluster",
    "SENTINEL_PROXY_METRICS_PORT": "a stdio proxy's /metrics, on the proxy's host",
    "SENTINEL_PROXY_REQUEST_TIMEOUT_S": "the proxy's audit timeout, set where the proxy runs",
    "SENTINEL_PROXY_CAPTURE_MAX_BYTES": "the proxy's capture bound, set where the proxy runs",
    "SENTINEL_PROXY_SESSION_IDLE_S": "the HTTP proxy's session idle timeout, set where the proxy runs",
}

# The runtime packages, what the image deploys (sentinel_local/ only runs the local services).
CODE_DIRS = ("sentinel", "ingest_app", "workers", "beat", "mcp_proxy")
SETTING = re.compile(r'\b_(str|int|float|port)\(\s*"([A-Z][A-Z0-9_]*)"')
ENV_READ = re.compile(r'os\.(?:environ\.get\(|environ\[|getenv\()\s*["\']([A-Z][A-Z0-9_]*)["\']')

Doc = dict[str, Any]


# -- building ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomize() -> str:
    """The pinned kustomize, installed into .stack/bin with `go install` when missing."""
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(
            "could not install kustomize with k8s/tools/install.sh (needs Go and the Go module proxy);"
            f" run `bash k8s/tools/install.sh` to see why.\n{result.stderr}"
        )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(kustomize: str) -> dict[str, list[Doc]]:
    """`kustomize build` of each kustomization, as parsed documents."""
    out: dict[str, list[Doc]] = {}
    for name in KUSTOMIZATIONS:
        result = subprocess.run([kustomize, "build", str(K8S / name)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"kustomize build k8s/{name} failed:\n{result.stderr}"
        out[name] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


def _all(built: dict[str, list[Doc]]) -> Iterator[tuple[str, Doc]]:
    for name, docs in built.items():
        for doc in docs:
            yield name, doc


def _workloads(built: dict[str, list[Doc]]) -> Iterator[tuple[str, Doc]]:
    for name, doc in _all(built):
        if doc["kind"] in WORKLOAD_KINDS:
            yield name, doc


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name}")


def _container(docs: list[Doc], name: str, container_name: str | None = None) -> tuple[Doc, Doc]:
    """(pod spec, container) of the container `container_name` (default: `name`) of Deployment `name`."""
    container_name = container_name or name
    pod = _find(docs, "Deployment", name)["spec"]["template"]["spec"]
    for container in pod["containers"]:
        if container["name"] == container_name:
            return pod, container
    raise AssertionError(f"Deployment {name} has no container {container_name}")


def _configmap(docs: list[Doc], generated_name: str) -> Doc:
    """A generated ConfigMap by its generator name (kustomize appends a content hash)."""
    found = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(generated_name + "-")]
    assert len(found) == 1, f"expected one ConfigMap {generated_name}-<hash>, found {len(found)}"
    return found[0]


def test_every_kustomization_builds_the_whole_system(built: dict[str, list[Doc]]) -> None:
    for name, docs in built.items():
        kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
        for expected in [
            ("Namespace", "sentinel"),
            *[("Deployment", n) for n in (*SENTINEL_CONTAINERS, "otel-collector", "grafana")],
            *[("StatefulSet", n) for n in ("kafka", "clickhouse", "rabbitmq", "redis", "tempo", "prometheus")],
            ("Service", "ingest"),
            ("Service", "flower"),
            ("HorizontalPodAutoscaler", "ingest"),
            ("PodDisruptionBudget", "ingest"),
        ]:
            assert expected in kinds, f"k8s/{name} lacks {expected}"
        for doc in docs:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "sentinel", f"{doc['kind']} {doc['metadata']['name']}"


def test_every_document_validates_strictly_against_the_pinned_kubernetes(built: dict[str, list[Doc]]) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is missing: `.venv/bin/pip install -r requirements-dev.txt`")
    errors = []
    for name, doc in _all(built):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except Exception as exc:  # noqa: BLE001 - every failure is collected and reported at once
            errors.append(f"k8s/{name} {doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


# -- workloads -----------------------------------------------------------------------------------


def test_every_container_is_sized_and_runs_non_root_on_a_read_only_root(built: dict[str, list[Doc]]) -> None:
    for name, workload in _workloads(built):
        pod = workload["spec"]["template"]["spec"]
        where = f"k8s/{name} {workload['kind']}/{workload['metadata']['name']}"
        assert pod.get("enableServiceLinks") is False, f"{where}: service links leak *_PORT variables"
        pod_sc = pod.get("securityContext", {})
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        for container in pod.get("initContainers", []) + pod["containers"]:
            at = f"{where} container {container['name']}"
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resources.get(part, {}).get(resource), f"{at}: no {part}.{resource}"
            sc = container.get("securityContext", {})
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{at}: runAsNonRoot"
            assert sc.get("runAsUser", pod_sc.get("runAsUser", 0)) != 0, f"{at}: runs as uid 0"
            assert sc.get("readOnlyRootFilesystem") is True, f"{at}: readOnlyRootFilesystem"
            assert sc.get("allowPrivilegeEscalation") is False, f"{at}: allowPrivilegeEscalation"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{at}: capabilities not dropped"


def test_every_long_running_container_has_liveness_and_readiness_probes(built: dict[str, list[Doc]]) -> None:
    for name, workload in _workloads(built):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            at = f"k8s/{name} {workload['metadata']['name']}/{container['name']}"
            assert "livenessProbe" in container, f"{at}: no liveness probe"
            assert "readinessProbe" in container, f"{at}: no readiness probe"


def _exec_command(probe: Doc) -> str:
    return " ".join(probe.get("exec", {}).get("command", []))


def _failure_window(probe: Doc) -> int:
    """Seconds of failures before the kubelet acts (the API's defaults: every 10 s, 3 times)."""
    return probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


def test_ingest_runs_its_server_behind_an_nginx_sidecar_probed_through_it(
    built: dict[str, list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app server (granian, started by ingest_app/server.py) binds loopback only; nginx, in the
    # same pod, is the only way in: it buffers whole requests, so stalled uploads never hold the
    # app's threads.
    from ingest_app import server
    from sentinel import settings

    for name, docs in built.items():
        configmap = _configmap(docs, CONFIGMAP)["data"]
        port, upstream = int(configmap["SENTINEL_INGEST_PORT"]), int(configmap["SENTINEL_INGEST_UPSTREAM_PORT"])
        assert upstream != port
        pod, ingest = _container(docs, "ingest")
        _, nginx = _container(docs, "ingest", NGINX_SIDECAR)
        assert [c["name"] for c in pod["containers"]] == ["ingest", NGINX_SIDECAR], f"k8s/{name}"

        # The sidecar: a pinned unprivileged nginx, the only container with a port, probed through
        # itself (so /healthz and /readyz prove the whole path), and given no environment at all.
        assert re.fullmatch(r"nginxinc/nginx-unprivileged:\d+\.\d+\.\d+-alpine", nginx["image"]), nginx["image"]
        assert nginx["ports"] == [{"name": "http", "containerPort": port}]
        assert nginx["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert nginx["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert nginx["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert "env" not in nginx and "envFrom" not in nginx, "nginx reads no environment; keep the tokens away"

        # The app server: started the way the local stack starts it, by ingest_app/server.py, which
        # execs granian with the bind, workers, threads and graceful stop from settings.
        assert ingest["command"] == ["python", "-m", "ingest_app.server"], ingest["command"]
        for setting, variable in (
            ("INGEST_UPSTREAM_PORT", "SENTINEL_INGEST_UPSTREAM_PORT"),
            ("INGEST_WORKERS", "SENTINEL_INGEST_WORKERS"),
            ("INGEST_THREADS", "SENTINEL_INGEST_THREADS"),
        ):
            monkeypatch.setattr(settings, setting, int(configmap[variable]))
        argv = server.argv()
        assert argv[1:3] == ["-m", "granian"] and argv[-1] == server.APP, argv
        for flag, value in (
            ("--interface", "wsgi"),
            ("--host", "127.0.0.1"),
            ("--port", str(upstream)),
            ("--workers", configmap["SENTINEL_INGEST_WORKERS"]),
            ("--blocking-threads", configmap["SENTINEL_INGEST_THREADS"]),
            ("--workers-kill-timeout", str(server.GRACEFUL_TIMEOUT_S)),
        ):
            assert argv[argv.index(flag) + 1] == value, f"k8s/{name}: granian {flag}: {argv}"
        # No port (it is not on the pod IP), so the kubelet's httpGet and tcpSocket probes could
        # never reach it; its probes ask it on loopback from inside the container.
        assert "ports" not in ingest, "the app server listens on loopback only; nginx's port is the pod's"
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = ingest[kind]
            assert "httpGet" not in probe and "tcpSocket" not in probe, f"ingest {kind} goes to the pod IP"
            assert f"http://127.0.0.1:{upstream}/healthz" in _exec_command(probe), f"ingest {kind}"
        # nginx gives up on the app server later than the app server's own liveness does, and drains
        # first on stop; the app server's preStop sleep and graceful stop fit in the grace period.
        assert _failure_window(nginx["livenessProbe"]) > _failure_window(ingest["livenessProbe"])
        sleeps = {c["name"]: int(c["lifecycle"]["preStop"]["exec"]["command"][-1]) for c in (ingest, nginx)}
        assert sleeps[NGINX_SIDECAR] < sleeps["ingest"], "the app server must answer while nginx drains"
        assert sleeps["ingest"] + server.GRACEFUL_TIMEOUT_S < pod["terminationGracePeriodSeconds"]

        # The Service reaches the pod through the sidecar's port only.
        service = _find(docs, "Service", "ingest")
        for service_port in service["spec"]["ports"]:
            target = service_port["targetPort"]
            owners = [
                c["name"]
                for c in pod["containers"]
                for p in c.get("ports", [])
                if target in (p["name"], p["containerPort"])
            ]
            assert owners == [NGINX_SIDECAR], f"k8s/{name} Service ingest targets {target!r}: {owners}"
            assert service_port["port"] == port


def test_bridge_worker_and_beat_are_probed_on_their_metrics_port(built: dict[str, list[Doc]]) -> None:
    # They serve no API, only /metrics from a thread of the process: liveness asks that, which
    # needs nothing outside the pod, so a Kafka or broker outage never restarts them. The worker's
    # readiness also pings it through the broker (an exec probe), so a rollout waits for consumers.
    for docs in built.values():
        for name in ("bridge", "worker", "beat"):
            _, container = _container(docs, name)
            assert [p["name"] for p in container["ports"]] == ["metrics"], name
            assert container["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}, name
        _, worker = _container(docs, "worker")
        assert "inspect ping" in " ".join(worker["readinessProbe"]["exec"]["command"])


def test_ports_agree_with_the_configmap(built: dict[str, list[Doc]]) -> None:
    for docs in built.values():
        configmap = _configmap(docs, CONFIGMAP)["data"]
        # Deployment: (container, port name, variable); ingest is served by its nginx sidecar.
        expected = {
            "ingest": (NGINX_SIDECAR, "http", "SENTINEL_INGEST_PORT"),
            "flower": ("flower", "http", "SENTINEL_FLOWER_PORT"),
            "bridge": ("bridge", "metrics", "SENTINEL_BRIDGE_METRICS_PORT"),
            "worker": ("worker", "metrics", "SENTINEL_WORKER_METRICS_PORT"),
            "beat": ("beat", "metrics", "SENTINEL_BEAT_METRICS_PORT"),
        }
        for name, (container_name, port_name, variable) in expected.items():
            _, container = _container(docs, name, container_name)
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports[port_name] == int(configmap[variable]), f"{name}: {variable}"
            annotations = _find(docs, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true", name
            assert annotations["prometheus.io/port"] == configmap[variable], name
        assert configmap["SENTINEL_HOST"] == "0.0.0.0", "servers must listen beyond loopback in a pod"


def test_beat_runs_exactly_one_replica_and_never_two_during_a_rollout(built: dict[str, list[Doc]]) -> None:
    for docs in built.values():
        beat = _find(docs, "Deployment", "beat")
        assert beat["spec"]["replicas"] == 1
        assert beat["spec"]["strategy"] == {"type": "Recreate"}
        assert not [
            d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"] == "beat"
        ]


def test_ingest_scales_with_an_hpa_and_keeps_one_pod_through_disruptions(built: dict[str, list[Doc]]) -> None:
    for name, docs in built.items():
        deployment = _find(docs, "Deployment", "ingest")
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        hpa = _find(docs, "HorizontalPodAutoscaler", "ingest")
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ingest"}
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = _find(docs, "Service", "ingest")
        pdb = _find(docs, "PodDisruptionBudget", "ingest")
        for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
            assert selector.items() <= labels.items()
        if name == "base":
            assert hpa["spec"]["minReplicas"] >= 2
            assert pdb["spec"]["minAvailable"] == 1


def test_the_laptop_overlay_runs_one_replica_of_everything(built: dict[str, list[Doc]]) -> None:
    docs = built["overlays/laptop"]
    assert _find(docs, "HorizontalPodAutoscaler", "ingest")["spec"]["minReplicas"] == 1
    for _, workload in _workloads({"laptop": docs}):
        # Kafka keeps its quorum of three: mcp.events has three replicas everywhere.
        expected = 3 if workload["metadata"]["name"] == "kafka" else 1
        assert workload["spec"].get("replicas", 1) == expected, workload["metadata"]["name"]
    assert "minAvailable" not in _find(docs, "PodDisruptionBudget", "ingest")["spec"]


def test_dependencies_are_statefulsets_and_kafka_runs_kraft(built: dict[str, list[Doc]]) -> None:
    for docs in built.values():
        for name in ("kafka", "clickhouse", "rabbitmq", "redis"):
            workload = _find(docs, "StatefulSet", name)
            assert workload["spec"]["volumeClaimTemplates"], name
        properties = _configmap(docs, "kafka-config")["data"]["server.properties"]
        assert "process.roles=broker,controller" in properties
        assert "zookeeper" not in properties


def test_kafka_is_three_brokers_with_mcp_events_at_rf_3_and_two_in_sync(built: dict[str, list[Doc]]) -> None:
    for name, docs in built.items():
        kafka = _find(docs, "StatefulSet", "kafka")
        assert kafka["spec"]["replicas"] == 3, name
        assert kafka["spec"]["podManagementPolicy"] == "Parallel", name
        lines = _configmap(docs, "kafka-config")["data"]["server.properties"].splitlines()
        properties = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
        voters = properties["controller.quorum.voters"].split(",")
        assert voters == [f"{n + 1}@kafka-{n}.kafka:9093" for n in range(3)], name
        assert "node.id" not in properties  # per pod, from its ordinal
        for key in ("default.replication.factor", "offsets.topic.replication.factor"):
            assert properties[key] == "3", (name, key)
        assert properties["min.insync.replicas"] == "2", name
        configmap = _configmap(docs, CONFIGMAP)["data"]
        assert configmap["SENTINEL_EVENTS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert configmap["SENTINEL_KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        pod = _find(docs, "Deployment", "ingest")["spec"]["template"]["spec"]
        (init,) = [c for c in pod["initContainers"] if c["name"] == "kafka-topics"]
        script = init["command"][-1]
        assert '--replication-factor "$SENTINEL_EVENTS_TOPIC_REPLICATION_FACTOR"' in script
        assert "min.insync.replicas=$SENTINEL_KAFKA_MIN_INSYNC_REPLICAS" in script
        (container,) = kafka["spec"]["template"]["spec"]["containers"]
        assert "node.id=$(( ${POD_NAME##*-} + 1 ))" in container["command"][-1]


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMGT]i)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** ("KMGT".index(unit[0]) + 1)


def test_kafkas_topics_are_capped_to_fit_its_volume(built: dict[str, list[Doc]]) -> None:
    # The broker's 7 days alone let a busy pipeline fill the volume (a full broker: 503s at ingest).
    # Each partition holds up to its cap plus one segment; both topics together must fit in 80%.
    for name, docs in built.items():
        configmap = _configmap(docs, CONFIGMAP)["data"]
        retention = int(configmap["SENTINEL_KAFKA_RETENTION_BYTES"])
        segment = int(configmap["SENTINEL_KAFKA_SEGMENT_BYTES"])
        partitions = int(configmap["SENTINEL_EVENTS_TOPIC_PARTITIONS"])
        (claim,) = _find(docs, "StatefulSet", "kafka")["spec"]["volumeClaimTemplates"]
        volume = _bytes(claim["spec"]["resources"]["requests"]["storage"])
        assert 0 < segment < retention, f"k8s/{name}"
        assert 2 * partitions * (retention + segment) <= 0.8 * volume, f"k8s/{name}: the topics outgrow Kafka's volume"

        # The ingest init container that creates the topics sets the cap on both, made now or before.
        pod = _find(docs, "Deployment", "ingest")["spec"]["template"]["spec"]
        (init,) = [c for c in pod["initContainers"] if c["name"] == "kafka-topics"]
        script = init["command"][-1]
        assert '"$SENTINEL_EVENTS_TOPIC" "$SENTINEL_DLQ_TOPIC"' in script
        assert "kafka-configs.sh" in script and "--alter" in script
        assert "retention.bytes=$SENTINEL_KAFKA_RETENTION_BYTES" in script
        assert "segment.bytes=$SENTINEL_KAFKA_SEGMENT_BYTES" in script
        assert [e["configMapRef"]["name"] for e in init["envFrom"]] == [_configmap(docs, CONFIGMAP)["metadata"]["name"]]


# -- configuration -------------------------------------------------------------------------------


def _settings_types() -> dict[str, str]:
    source = (REPO / "sentinel" / "settings.py").read_text()
    return {name: kind for kind, name in SETTING.findall(source)}


def _variables_the_code_reads() -> set[str]:
    names = set(_settings_types())
    for directory in CODE_DIRS:
        for path in (REPO / directory).rglob("*.py"):
            names.update(ENV_READ.findall(path.read_text()))
    return names


def _env_sources(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """Each variable the container gets, mapped to where from: 'configmap' or 'secret:NAME/KEY'."""
    sources: dict[str, str] = {}
    for env_from in container.get("envFrom", []):
        ref = env_from["configMapRef"]["name"]
        data = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == ref)["data"]
        sources.update(dict.fromkeys(data, "configmap"))
    for env in container.get("env", []):
        secret = env.get("valueFrom", {}).get("secretKeyRef")
        sources[env["name"]] = f"secret:{secret['name']}/{secret['key']}" if secret else "literal"
    return sources


def test_the_code_reads_no_variable_unaccounted_for() -> None:
    read = _variables_the_code_reads()
    assert {"SENTINEL_KAFKA_BOOTSTRAP", "SENTINEL_FLOWER_BASIC_AUTH", "PROMETHEUS_MULTIPROC_DIR"} <= read
    # OTEL_* variables are the SDK's own, read by it as the specification says, not by our code.
    stale = {name for name in DEFAULTED if not name.startswith("OTEL_")} - read
    assert not stale, f"listed as defaulted but no longer read by the code: {sorted(stale)}"
    assert not set(DEFAULTED) & set(SECRET_ENV)


def test_every_variable_the_code_reads_is_set_on_every_sentinel_container(built: dict[str, list[Doc]]) -> None:
    read = _variables_the_code_reads()
    for name, docs in built.items():
        configmap = _configmap(docs, CONFIGMAP)["data"]
        for variable in sorted(read - set(DEFAULTED)):
            in_configmap = variable in configmap
            assert in_configmap != (variable in SECRET_ENV), (
                f"{variable}: set by {'both the ConfigMap and' if in_configmap else 'neither the ConfigMap nor'}"
                " a Secret; set it once, or list it in DEFAULTED with the reason"
            )
        for variable in DEFAULTED:
            assert variable not in configmap, f"{variable} is listed as defaulted but the ConfigMap sets it"
        for container_name in SENTINEL_CONTAINERS:
            _, container = _container(docs, container_name)
            sources = _env_sources(container, docs)
            at = f"k8s/{name} {container_name}"
            assert [e["configMapRef"]["name"] for e in container["envFrom"]] == [
                _configmap(docs, CONFIGMAP)["metadata"]["name"]
            ], at
            for variable in sorted(read - set(DEFAULTED)):
                if variable in SECRET_ENV:
                    secret, key, users = SECRET_ENV[variable]
                    if container_name in users:
                        assert sources.get(variable) == f"secret:{secret}/{key}", f"{at}: {variable}"
                    else:
                        assert variable not in sources, f"{at} needs no {variable}; keep the secret away"
                else:
                    assert sources.get(variable) == "configmap", f"{at}: {variable} is not from the ConfigMap"


def test_configmap_values_parse_as_their_settings_types(built: dict[str, list[Doc]]) -> None:
    casts = {"int": int, "port": int, "float": float, "str": str}
    for docs in built.values():
        configmap = _configmap(docs, CONFIGMAP)["data"]
        for variable, kind in _settings_types().items():
            if variable in configmap:
                casts[kind](configmap[variable])
        assert int(configmap["SENTINEL_INGEST_WORKERS"]) >= 1
        assert int(configmap["OTEL_SPAN_LINK_COUNT_LIMIT"]) >= int(configmap["SENTINEL_CHUNK_MAX_EVENTS"])
        assert configmap["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_no_secret_is_inlined(built: dict[str, list[Doc]]) -> None:
    credentials_in_url = re.compile(r"://[^/@\s]*:[^/@\s]*@")
    for name, doc in _all(built):
        assert doc["kind"] != "Secret", f"k8s/{name} inlines Secret {doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            for key, value in doc.get("data", {}).items():
                assert not credentials_in_url.search(value), f"k8s/{name} {doc['metadata']['name']}/{key}"
                assert "password" not in key.lower(), f"k8s/{name} {doc['metadata']['name']}/{key}"


def test_every_secret_referenced_is_documented(built: dict[str, list[Doc]]) -> None:
    readme = (K8S / "README.md").read_text()
    references = set()
    for _, workload in _workloads(built):
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret:
                    references.add((secret["name"], secret["key"]))
    assert references
    for secret, key in sorted(references):
        assert f"`{secret}`" in readme and f"`{key}`" in readme, (
            f"k8s/README.md does not say how to make {secret}/{key}"
        )


def test_every_configmap_a_pod_uses_is_built(built: dict[str, list[Doc]]) -> None:
    for name, docs in built.items():
        present = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
        for _, workload in _workloads({name: docs}):
            pod = workload["spec"]["template"]["spec"]
            used = {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
            for container in pod.get("initContainers", []) + pod["containers"]:
                used |= {e["configMapRef"]["name"] for e in container.get("envFrom", [])}
                used |= {
                    e["valueFrom"]["configMapKeyRef"]["name"]
                    for e in container.get("env", [])
                    if "configMapKeyRef" in e.get("valueFrom", {})
                }
            assert used <= present, f"k8s/{name} {workload['metadata']['name']}: missing {used - present}"


def test_sentinel_containers_write_only_to_mounted_volumes(built: dict[str, list[Doc]]) -> None:
    for docs in built.values():
        multiproc = _configmap(docs, CONFIGMAP)["data"]["PROMETHEUS_MULTIPROC_DIR"]
        for name in SENTINEL_CONTAINERS:
            pod, container = _container(docs, name)
            writable = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in writable, f"{name}: /tmp is not a writable volume"
            assert mounts.get(multiproc) in writable, f"{name}: {multiproc} is not a writable volume"


# -- ingest's nginx ------------------------------------------------------------------------------


def _nginx_statements(text: str) -> tuple[dict[str, str], list[str]]:
    """({path directive: value}, every other line) of an nginx config, comments and blanks dropped."""
    paths: dict[str, str] = {}
    rest: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        directive, _, value = line.partition(" ")
        if directive in NGINX_PATH_DIRECTIVES:
            assert directive not in paths, f"{directive} twice"
            paths[directive] = value.rstrip(";").strip()
        else:
            rest.append(line)
    return paths, rest


def test_the_sidecar_runs_the_local_stacks_nginx_config(
    built: dict[str, list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # nginx_config() renders the local nginx from settings; with the ConfigMap's values it must
    # give the sidecar's file line for line, but for the files nginx writes (under its /tmp).
    from sentinel import settings
    from sentinel_local import processes

    for name, docs in built.items():
        configmap = _configmap(docs, CONFIGMAP)["data"]
        monkeypatch.setattr(settings, "HOST", configmap["SENTINEL_HOST"])
        monkeypatch.setattr(settings, "INGEST_MAX_BODY_BYTES", int(configmap["SENTINEL_INGEST_MAX_BODY_BYTES"]))
        local = processes.nginx_config(
            int(configmap["SENTINEL_INGEST_PORT"]),
            [int(configmap["SENTINEL_INGEST_UPSTREAM_PORT"])],
            Path("/nonexistent/ingest"),
        )
        deployed = _configmap(docs, NGINX_CONFIGMAP)["data"]["nginx.conf"]
        assert deployed == NGINX_CONFIG_FILE.read_text()
        local_paths, local_rest = _nginx_statements(local)
        deployed_paths, deployed_rest = _nginx_statements(deployed)
        assert deployed_rest == local_rest, (
            f"k8s/{name}: {NGINX_CONFIG_FILE.relative_to(REPO)} differs from nginx_config() beyond its paths"
        )
        assert deployed_paths.keys() == local_paths.keys()

        # Every file nginx writes is in an emptyDir of the sidecar; its config comes from the
        # ConfigMap, read-only.
        pod, nginx = _container(docs, "ingest", NGINX_SIDECAR)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in nginx["volumeMounts"]}
        for directive, path in deployed_paths.items():
            mount = next((m for p, m in mounts.items() if path.startswith(p.rstrip("/") + "/")), None)
            assert mount and "emptyDir" in volumes[mount["name"]], f"{directive} {path}: not in an emptyDir"
        command = nginx["command"]
        conf = Path(command[command.index("-c") + 1])
        mount = mounts[str(conf.parent)]
        assert mount.get("readOnly") is True
        assert volumes[mount["name"]]["configMap"]["name"] == _configmap(docs, NGINX_CONFIGMAP)["metadata"]["name"]
        assert conf.name == "nginx.conf"


# -- telemetry -----------------------------------------------------------------------------------


def test_the_collector_tail_samples_errors_and_slow_traces_into_tempo() -> None:
    config = yaml.safe_load((K8S / "base" / "config" / "otel-collector.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "tail_sampling" in pipeline["processors"] and pipeline["processors"][-1] == "batch"
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert "threshold_ms" in policies["latency"]["latency"]
    exporter = config["exporters"][pipeline["exporters"][0]]
    assert exporter["endpoint"] == "tempo:4317"


def _metric_names() -> dict[str, str]:
    source = (REPO / "sentinel" / "metrics.py").read_text()
    return {name: kind for kind, name in re.findall(r'\b(Counter|Gauge|Histogram)\(\s*"(sentinel_\w+)"', source)}


def test_the_dashboard_shows_every_sentinel_metric_and_no_unknown_one() -> None:
    dashboard = json.loads((K8S / "base" / "config" / "grafana" / "sentinel-pipeline.json").read_text())
    exprs = " ".join(t.get("expr", "") for p in dashboard["panels"] for t in p.get("targets", []))
    exported = set()
    for name, kind in _metric_names().items():
        series = {"Counter": [f"{name}_total"], "Gauge": [name], "Histogram": [f"{name}_bucket"]}[kind]
        exported |= {name + suffix for suffix in ("", "_total", "_bucket", "_sum", "_count")}
        for expected in series:
            assert re.search(rf"\b{expected}\b", exprs), f"the dashboard does not show {expected}"
    shown = set(re.findall(r"\bsentinel_\w+", exprs))
    assert shown <= exported, f"the dashboard queries metrics nobody exports: {shown - exported}"


def test_grafana_links_traces_to_rows_and_rows_to_traces() -> None:
    text = (K8S / "base" / "config" / "grafana" / "datasources.yaml").read_text()
    # Grafana expands $NAME in provisioning files: its own link variables must be written $$.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    single = set(re.findall(r"(?<!\$)\$(?!\$)\{?([\w.]+)", "\n".join(lines)))
    assert single == {"CLICKHOUSE_GRAFANA_PASSWORD"}, f"unescaped $ in datasources.yaml: {single}"
    sources = {d["uid"]: d for d in yaml.safe_load(text)["datasources"]}
    tempo, clickhouse = sources["tempo"], sources["clickhouse"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert tempo["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "clickhouse"
    to_rows = [c for c in tempo["correlations"] if c["targetUID"] == "clickhouse"]
    assert to_rows and "trace_id" in to_rows[0]["config"]["target"]["rawSql"]
    to_traces = {c["config"]["field"] for c in clickhouse["correlations"] if c["targetUID"] == "tempo"}
    assert "trace_id" in to_traces

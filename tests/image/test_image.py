"""The container image (Containerfile, `make image`): every process of it, with the command its k8s/
manifest gives, on a read-only root as uid 10001, against this stack's services (`--network host`).

Each process must answer its health check (or, for the schema migration, finish); then one event
goes through the image's own ingest, bridge and worker into ClickHouse. The stack's own bridge and
worker are stopped meanwhile, so the row can only come from the image's (and are started again at
the end). The image is built first (image/build.sh: reused layers make that seconds once built).
Each process's start time, from `podman run` to its first healthy answer, is printed.
"""

from __future__ import annotations

import json
import re
import resource
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from sentinel import settings
from sentinel_cli.emit import audit_event
from sentinel_local import processes, stack
from tests.e2e.helpers import wait_until
from workers.clickhouse.client import new_client
from workers.clickhouse.queries import find_event

REPO = settings.REPO_ROOT
PODMAN = REPO / "image" / "podman"
IMAGE = "localhost/sentinel:0.1.0"
K8S = REPO / "k8s" / "base"
START_TIMEOUT_S = 90.0
# runc refused every nproc above 32768 on this kernel (host limit 96367: "error setting rlimit type 6:
# operation not permitted"); 32768 and below start.
NPROC_CEILING = 32768
# What the k8s pods mount as emptyDirs besides /tmp (PROMETHEUS_MULTIPROC_DIR, beat's schedule).
EMPTY_DIRS = ("/var/run/sentinel/prometheus", "/var/run/celerybeat")
# The stack's processes whose work the image's must do alone while this module runs.
REPLACED = ("bridge", "worker")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((settings.HOST, 0))
        return int(probe.getsockname()[1])


def _k8s_command(manifest: str, container: str) -> list[str]:
    """The command of `container` in k8s/base/`manifest`, its $(VAR) references left for `expand`."""
    for doc in yaml.safe_load_all((K8S / manifest).read_text()):
        for kind in ("initContainers", "containers"):
            for entry in (doc or {}).get("spec", {}).get("template", {}).get("spec", {}).get(kind, []):
                if entry["name"] == container:
                    return list(entry["command"])
    raise AssertionError(f"k8s/base/{manifest} has no container {container}")


def _expand(argv: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of a container's command, from its environment."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in argv]


@pytest.fixture(scope="module")
def image() -> str:
    print("image: building (or reusing) the image with image/build.sh", flush=True)
    done = subprocess.run([str(REPO / "image" / "build.sh")], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"`make image` failed:\n{done.stderr[-4000:]}"
    return IMAGE


@pytest.fixture(scope="module")
def stack_without_bridge_and_worker() -> Iterator[None]:
    try:
        stack.up(echo=False)
    except stack.ServiceError as exc:
        pytest.fail(f"{exc}\n\nStart the services with `.venv/bin/sentinel stack up` (or `make test`).", pytrace=False)
    for name in REPLACED:
        processes.get(name).down()
    yield
    for name in REPLACED:
        processes.get(name).up()


@dataclass
class Container:
    name: str
    started: float

    def logs(self) -> str:
        done = subprocess.run([str(PODMAN), "logs", self.name], capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr)[-3000:]

    def running(self) -> bool:
        done = subprocess.run(
            [str(PODMAN), "inspect", "--format", "{{.State.Running}}", self.name],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip() == "true"


class Pod:
    """The image's containers of one test run, removed at the end."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.run_id = uuid.uuid4().hex[:6]
        self.folder = tempfile.TemporaryDirectory(prefix="sentinel-image-test-")
        Path(self.folder.name).chmod(0o755)
        self.containers: list[Container] = []
        self.start_s: dict[str, float] = {}
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], NPROC_CEILING)
        # No higher than the host's own limits: podman's defaults are higher, and runc refuses those here.
        self.limits = [f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}"]
        self.ports = {
            "SENTINEL_INGEST_UPSTREAM_PORT": _free_port(),
            "SENTINEL_FLOWER_PORT": _free_port(),
            "SENTINEL_WORKER_METRICS_PORT": _free_port(),
            "SENTINEL_BRIDGE_METRICS_PORT": _free_port(),
            "SENTINEL_BEAT_METRICS_PORT": _free_port(),
        }
        self.env = {
            # What k8s/base/config/sentinel.env sets, with this stack's addresses.
            "SENTINEL_HOST": settings.HOST,
            "SENTINEL_LOG_LEVEL": "INFO",
            "SENTINEL_KAFKA_BOOTSTRAP": settings.KAFKA_BOOTSTRAP,
            "SENTINEL_EVENTS_TOPIC_PARTITIONS": str(settings.EVENTS_TOPIC_PARTITIONS),
            "SENTINEL_CLICKHOUSE_HOST": settings.CLICKHOUSE_HOST,
            "SENTINEL_CLICKHOUSE_PORT": str(settings.CLICKHOUSE_PORT),
            "SENTINEL_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SENTINEL_REDIS_URL": settings.REDIS_URL,
            "SENTINEL_WORKER_CONCURRENCY": "1",
            "SENTINEL_BRIDGE_CONSUMERS": "1",
            "SENTINEL_INGEST_WORKERS": "1",
            "SENTINEL_FLOWER_BASIC_AUTH": "image:test",
            "FLOWER_BASIC_AUTH": "image:test",
            "PROMETHEUS_MULTIPROC_DIR": "/var/run/sentinel/prometheus",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{settings.HOST}:{settings.OTELCOL_OTLP_HTTP_PORT}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            **{k: str(v) for k, v in self.ports.items()},
        }

    def run(
        self, role: str, argv: list[str], *, detach: bool = True, mounts: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str] | Container:
        name = f"sentinel-image-test-{self.run_id}-{role}"
        podman = [
            str(PODMAN),
            "run",
            "--runtime=runc",
            "--cgroup-manager=cgroupfs",
            *self.limits,
            "--network=host",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            f"--name={name}",
            # The emptyDirs of the k8s pods: every path a Sentinel container writes to. Folders of the
            # host, not tmpfs: podman left a tmpfs under /run owned by root, 0755, whatever its mode.
            "--tmpfs=/tmp:rw,mode=1777",
            *(f"--volume={self._empty_dir(name, path)}:{path}:rw" for path in EMPTY_DIRS),
            *(f"--volume={m}" for m in mounts),
            *(f"--env={k}={v}" for k, v in self.env.items()),
        ]
        started = time.monotonic()
        if not detach:
            done = subprocess.run(
                [*podman, "--rm", self.image, *_expand(argv, self.env)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            self.start_s[role] = time.monotonic() - started
            return done
        subprocess.run([*podman, "--detach", self.image, *_expand(argv, self.env)], check=True, capture_output=True)
        container = Container(name, started)
        self.containers.append(container)
        return container

    def _empty_dir(self, container: str, path: str) -> Path:
        folder = Path(self.folder.name) / container / path.strip("/").replace("/", "-")
        folder.mkdir(parents=True)
        folder.chmod(0o1777)
        return folder

    def healthy(self, role: str, container: Container, probe: Callable[[], bool]) -> None:
        def answered() -> bool:
            if not container.running():
                raise AssertionError(f"{role} exited; its output:\n{container.logs()}")
            try:
                return probe()
            except requests.RequestException:
                return False

        try:
            wait_until(answered, timeout_s=START_TIMEOUT_S, interval_s=0.1, what=f"the image's {role} to answer")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{container.logs()}") from exc
        self.start_s[role] = time.monotonic() - container.started

    def remove(self) -> None:
        names = [c.name for c in self.containers]
        if names:
            subprocess.run([str(PODMAN), "rm", "--force", "--time=10", *names], capture_output=True, timeout=120)
        self.folder.cleanup()


@pytest.fixture(scope="module")
def pod(image: str, stack_without_bridge_and_worker: None) -> Iterator[Pod]:
    running = Pod(image)
    yield running
    running.remove()
    print("\nimage start times (podman run -> first healthy answer):", flush=True)
    for role, seconds in running.start_s.items():
        print(f"  {role:<8} {seconds:5.1f} s", flush=True)


def _ok(url: str, **kwargs: object) -> bool:
    return requests.get(url, timeout=2, **kwargs).ok  # type: ignore[arg-type]


def test_the_image_runs_as_uid_10001_on_a_read_only_root(pod: Pod) -> None:
    done = pod.run(
        "whoami", ["sh", "-c", "id -u; touch /app/x 2>/dev/null && echo writable || echo read-only"], detach=False
    )
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.stdout.split() == ["10001", "read-only"], done.stdout + done.stderr


def test_the_image_holds_only_the_runtime_packages(pod: Pod) -> None:
    done = pod.run("packages", ["sh", "-c", "ls /app"], detach=False)
    assert isinstance(done, subprocess.CompletedProcess)
    assert sorted(done.stdout.split()) == ["beat", "ingest_app", "mcp_proxy", "sentinel", "workers"]


def test_the_schema_migration_applies_and_exits(pod: Pod) -> None:
    done = pod.run("migrate", _k8s_command("worker.yaml", "schema"), detach=False)
    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "schema applied" in done.stdout


def test_ingest_answers_its_health_check_and_is_ready(pod: Pod) -> None:
    ingest = pod.run("ingest", _k8s_command("ingest.yaml", "ingest"))
    assert isinstance(ingest, Container)
    base = f"http://127.0.0.1:{pod.ports['SENTINEL_INGEST_UPSTREAM_PORT']}"
    pod.healthy("ingest", ingest, lambda: _ok(f"{base}/healthz"))
    assert _ok(f"{base}/readyz"), "ingest in the image cannot reach Kafka"


def test_the_worker_answers_its_metrics_and_a_ping_through_the_broker(pod: Pod) -> None:
    worker = pod.run("worker", _k8s_command("worker.yaml", "worker"))
    assert isinstance(worker, Container)
    port = pod.ports["SENTINEL_WORKER_METRICS_PORT"]
    pod.healthy("worker", worker, lambda: _ok(f"http://127.0.0.1:{port}/metrics"))
    # The k8s readiness probe's command, inside the container (its node name is its hostname).
    hostname = subprocess.run(
        [str(PODMAN), "exec", worker.name, "python", "-c", "import socket; print(socket.gethostname())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ping = [
        str(PODMAN),
        "exec",
        worker.name,
        "sh",
        "-c",
        f"unset PROMETHEUS_MULTIPROC_DIR; exec celery -A workers.celery_app inspect ping --timeout 10"
        f" -d sentinel-worker@{hostname}",
    ]
    answered = wait_until(
        lambda: subprocess.run(ping, capture_output=True, text=True, timeout=60).returncode == 0,
        timeout_s=60,
        what="the worker to answer celery inspect ping",
    )
    assert answered


def test_the_bridge_answers_its_metrics(pod: Pod) -> None:
    bridge = pod.run("bridge", _k8s_command("bridge.yaml", "bridge"))
    assert isinstance(bridge, Container)
    port = pod.ports["SENTINEL_BRIDGE_METRICS_PORT"]
    pod.healthy("bridge", bridge, lambda: _ok(f"http://127.0.0.1:{port}/metrics"))


def test_an_event_goes_through_the_images_ingest_bridge_and_worker_into_clickhouse(pod: Pod) -> None:
    assert {"ingest", "worker", "bridge"} <= set(pod.start_s), "the image's ingest, worker and bridge must run"
    event = audit_event(event_type="image.test", server="sentinel-image", tool="image")
    url = f"http://127.0.0.1:{pod.ports['SENTINEL_INGEST_UPSTREAM_PORT']}/events"
    response = requests.post(url, data=json.dumps(event), headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 202, response.text
    (event_id,) = response.json()["event_ids"]
    client = new_client()
    try:
        row = wait_until(lambda: find_event(client, event_id), timeout_s=120, what="the event's row in ClickHouse")
    finally:
        client.disconnect()
    assert row.event_type == "image.test"


def test_beat_answers_its_metrics(pod: Pod) -> None:
    beat = pod.run("beat", _k8s_command("beat.yaml", "beat"))
    assert isinstance(beat, Container)
    port = pod.ports["SENTINEL_BEAT_METRICS_PORT"]
    pod.healthy("beat", beat, lambda: _ok(f"http://127.0.0.1:{port}/metrics"))


def test_flower_answers_its_health_check(pod: Pod) -> None:
    flower = pod.run("flower", _k8s_command("flower.yaml", "flower"))
    assert isinstance(flower, Container)
    url = f"http://{settings.HOST}:{pod.ports['SENTINEL_FLOWER_PORT']}/healthcheck"
    pod.healthy("flower", flower, lambda: _ok(url, auth=("image", "test")))


def test_the_mcp_proxy_answers_its_health_check(pod: Pod, tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"remote": {"url": f"http://127.0.0.1:{_free_port()}/mcp"}}}))
    config.chmod(0o644)
    tmp_path.chmod(0o755)
    proxy = pod.run(
        "proxy",
        ["sentinel", "proxy", "--http", f"127.0.0.1:{port}", "--config", "/etc/sentinel/mcp.json"],
        mounts=(f"{config}:/etc/sentinel/mcp.json:ro",),
    )
    assert isinstance(proxy, Container)
    pod.healthy("proxy", proxy, lambda: _ok(f"http://127.0.0.1:{port}/healthz"))

"""Sentinel's own long-running processes, managed like the services: ingest, bridge, worker, beat, Flower.

Each runs detached with its log in `<stack>/<name>/<name>.log`; `sentinel up` starts them after the
stack, `sentinel down` stops them. Tests start the same processes through this module, so what a
newcomer runs is what is tested.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from sentinel import settings
from sentinel_local.stack.runner import Service, ServiceError, apt_install, port_open, which

VENV_BIN = Path(sys.executable).parent


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    # To the Collector (sentinel_local/stack/otelcol.py), as in k8s; it passes sampled traces to Jaeger.
    env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{settings.HOST}:{settings.OTELCOL_OTLP_HTTP_PORT}")
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    # Export spans within half a second so a trace is complete soon after its event lands.
    env.setdefault("OTEL_BSP_SCHEDULE_DELAY", "500")
    env["PYTHONPATH"] = str(settings.REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(overrides)
    return env


class AppProcess(Service):
    """A Sentinel process: nothing to install; 'ready' as each kind defines it."""

    port = 0

    def installed(self) -> bool:
        return True

    def install(self) -> None:
        pass

    def env(self) -> dict[str, str]:
        return process_env()

    def prepare(self) -> None:
        # A fresh log per run, so readiness is judged on this run's lines only.
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        metrics_dir = self.home / "prometheus"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()

    def alive_for(self, seconds: float) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            started = self.pid_path.stat().st_mtime
        except OSError:
            return False
        return time.time() - started >= seconds

    def addresses(self) -> dict[str, str]:
        return {"log": str(self.log_path)}

    def log_head(self) -> str:
        """The beginning of this run's log (rotated at each start), where readiness is announced;
        a busy process's tail has long moved past it. Empty when there is no log yet."""
        try:
            with self.log_path.open("rb") as log:
                return log.read(256 * 1024).decode("utf-8", "replace")
        except OSError:
            return ""

    def log_contains(self, text: str) -> bool:
        """Whether this run's log says `text` near its beginning (`log_head`)."""
        return text in self.log_head()

    def log_lines_with(self, *needles: bytes) -> str:
        """Every line of this run's log that holds one of `needles`, in order, however long the
        log has grown. For state a process announces again and again (the bridge's rebalances):
        the head holds only the first announcements."""
        found: list[bytes] = []
        try:
            with self.log_path.open("rb") as log:
                for line in log:
                    if any(needle in line for needle in needles):
                        found.append(line)
        except OSError:
            return ""
        return b"".join(found).decode("utf-8", "replace")


class Ingest(AppProcess):
    """nginx on the ingest port in front of the WSGI servers (granian, one per worker process) on Unix
    sockets, as one process group."""

    name = "ingest"
    start_timeout = 60.0

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.INGEST_PORT

    @property
    def upstream_port(self) -> int:
        # Where the first app server listens when there are no upstream sockets (the others on the
        # ports after it): what ingest_app.server computes from this process's environment
        # (settings.INGEST_UPSTREAM_PORT).
        return settings.INGEST_UPSTREAM_PORT if self.port == settings.INGEST_PORT else self.port + 1

    @property
    def nginx_folder(self) -> Path:
        """Where nginx's worker reads and writes: its buffers for large bodies and the app server's
        socket. Started as root, that worker runs as `nobody`, which needs every folder above them
        searchable by others. A stack under /root (0700) is not: bodies over nginx's 1 MiB memory
        buffer got nginx's own HTML 500 there. Such a stack gets a folder of this process's own in
        the system's temporary folder."""
        if searchable_by_others(self.home):
            return self.home
        digest = hashlib.sha256(os.fsencode(self.home)).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"sentinel-{self.name}-{digest}"

    @property
    def upstreams(self) -> list[Path] | list[int]:
        """Where the app servers listen for nginx, one per worker process: Unix sockets in
        `nginx_folder`, or loopback ports when a socket's path would be too long for one."""
        from ingest_app.server import upstreams

        return upstreams(self.nginx_folder, self.upstream_port)

    @property
    def nginx_conf(self) -> Path:
        return self.home / "nginx.conf"

    def installed(self) -> bool:
        return which("nginx") is not None or Path("/usr/sbin/nginx").exists()

    def install(self) -> None:
        apt_install("nginx")

    def env(self) -> dict[str, str]:
        return process_env(PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"))

    def prepare(self) -> None:
        super().prepare()
        folder = self.nginx_folder
        if folder != self.home:
            _own_folder(folder)
        temp = folder / "nginx-temp"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / sub).mkdir(parents=True, exist_ok=True)
            (temp / sub).chmod(0o777)  # nginx's workers drop to `nobody` when started as root
        self.nginx_conf.write_text(nginx_config(self.port, self.upstreams, folder))

    def argv(self) -> list[str]:
        sockets = [str(bind) for bind in self.upstreams if isinstance(bind, Path)]
        return [
            sys.executable,
            "-m",
            "sentinel_local.ingest_serve",
            "--nginx-conf",
            str(self.nginx_conf),
            *(arg for path in sockets for arg in ("--upstream-socket", path)),
        ]

    def ready(self) -> bool:
        # Every app server, not only the first to answer through nginx: a request sent to one still
        # starting would be refused, and nginx would leave that server out for its fail_timeout.
        if not port_open(self.port) or not all(map(listening, self.upstreams)):
            return False
        try:
            return requests.get(f"http://{settings.HOST}:{self.port}/readyz", timeout=3).ok
        except requests.RequestException:
            return False

    def addresses(self) -> dict[str, str]:
        return {"url": f"http://{settings.HOST}:{self.port}", "log": str(self.log_path)}


def listening(upstream: Path | int) -> bool:
    """Whether something accepts connections on `upstream`: a Unix socket, or a port on loopback."""
    if isinstance(upstream, int):
        return port_open(upstream)
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(upstream))
        except OSError:
            return False
        return True


def _own_folder(folder: Path) -> None:
    """Create `folder` (searchable by all, as nginx's worker needs) or take it over from an earlier
    run; refuse one that someone else made, since its name is predictable in a shared folder."""
    folder.mkdir(mode=0o755, exist_ok=True)
    found = folder.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise ServiceError(f"{folder} is not a folder of this user's: remove it, then start ingest again")
    folder.chmod(0o755)


def searchable_by_others(folder: Path) -> bool:
    """Whether a user other than the owner may reach what is in `folder` (o+x on it and above)."""
    try:
        return all(part.stat().st_mode & stat.S_IXOTH for part in (folder, *folder.parents))
    except OSError:  # not there (yet)
        return False


def nginx_config(port: int, upstreams: Sequence[int | Path], folder: Path) -> str:
    """nginx as ingest's front door: whole requests buffered before the app sees them, slow
    clients cut off, refusals in the same JSON shape as ingest's own, each request sent to the app
    server with the fewest in flight. `upstreams` are where the app servers listen: ports on
    loopback, or Unix sockets. `folder` holds nginx's pid file and body buffers
    (`Ingest.nginx_folder`)."""
    limit = settings.INGEST_MAX_BODY_BYTES
    temp = folder / "nginx-temp"
    servers = " ".join(
        f"server unix:{upstream};" if isinstance(upstream, Path) else f"server 127.0.0.1:{upstream};"
        for upstream in upstreams
    )
    return f"""\
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log stderr error;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    client_header_timeout 10s;
    client_body_timeout 10s;
    send_timeout 30s;
    keepalive_timeout 30s;
    # Exactly ingest's own limit, refused here with ingest's JSON reason. A little above it, nginx
    # forwarded bodies the app refuses by their Content-Length without reading them; the app
    # server then closed the connection while nginx was still writing the body, and the client
    # got "503 ingest_unavailable" with a Retry-After for a request that can never succeed.
    client_max_body_size {limit};
    client_body_buffer_size 1m;
    # Idle upstream connections close long before the app server would close them, so nginx never
    # sends a request on a connection the server is closing. Each app server is one Python process;
    # least_conn keeps their requests in flight even (ingest_app/server.py, upstreams).
    upstream ingest_app {{ least_conn; {servers} keepalive 64; keepalive_timeout 4s; }}
    server {{
        listen {settings.HOST}:{port} backlog=4096;
        default_type application/json;
        location / {{
            proxy_pass http://ingest_app;
            proxy_http_version 1.1;
            # Only the headers the app reads travel on: the server behind nginx answers more than
            # 100 header lines with a bare 431, and nginx has no limit on their number. A header
            # sent several times reaches the app once, with its first value.
            proxy_pass_request_headers off;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header Content-Type $content_type;
            proxy_set_header Authorization $http_authorization;
            proxy_set_header traceparent $http_traceparent;
            proxy_set_header tracestate $http_tracestate;
            proxy_set_header baggage $http_baggage;
            proxy_set_header User-Agent $http_user_agent;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering on;
            proxy_read_timeout 60s;
        }}
        error_page 413 = @too_large;
        error_page 502 503 504 = @unavailable;
        location @too_large {{
            return 413 '{{"error": "body_too_large", "detail": "the body is larger than {limit} bytes"}}';
        }}
        location @unavailable {{
            add_header Retry-After 5 always;
            return 503 '{{"error": "ingest_unavailable", "detail": "ingest is starting or restarting"}}';
        }}
    }}
}}
"""


class Bridge(AppProcess):
    name = "bridge"

    def env(self) -> dict[str, str]:
        # Several consumers (settings.BRIDGE_CONSUMERS) write metrics there; the parent merges them.
        return process_env(PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"))

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "workers.bridge"]

    def ready(self) -> bool:
        if self.pid() is None:
            return False
        # The whole log, not its head: a broker outage fills it with librdkafka's reconnect lines
        # (~40 a second for two consumers), and the reassignment after it once fell past the first
        # 256 KiB, so a bridge that had recovered was taken for stuck and stopped.
        return bridge_settled(self.log_lines_with(*_GROUP_LINES))


# What bridge_settled reads: the supervisor's and consumers' lines about the consumer group.
_GROUP_LINES = (
    b"bridge running",
    b"bridge consuming",
    b"assigned partitions",
    b"revoking partitions",
    b"partitions lost",
)


def bridge_settled(log: str) -> bool:
    """Whether the bridge's `log` (this run's lines, from its start) shows every consumer
    running its loop and holding an assignment made after the group's last revocation.

    Several consumers (workers/bridge/supervisor.py) join one by one: the first is assigned every
    partition, and the next join revokes them all and splits them. A message read before that can
    be read again by its new owner (a second `kafka.consume` span, a repeated insert), and a stop
    before every consumer runs its loop killed one before it could settle and log its stop.
    """
    supervising = re.search(r"bridge running (\d+) consumers", log)
    consumers = int(supervising.group(1)) if supervising else 1
    if log.count("bridge consuming") < consumers:
        return False
    revocations = [m.end() for m in re.finditer(r"revoking partitions|partitions lost", log)]
    since_last = log[revocations[-1] :] if revocations else log
    return since_last.count("assigned partitions") >= consumers


class Worker(AppProcess):
    name = "worker"

    def env(self) -> dict[str, str]:
        return process_env(PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"))

    def argv(self) -> list[str]:
        from workers.celery_app import INSERT_QUEUE, JOBS_QUEUE

        return [
            str(VENV_BIN / "celery"),
            "-A",
            "workers.celery_app",
            "worker",
            "--include=beat.tasks",
            "--loglevel=INFO",
            f"--concurrency={settings.WORKER_CONCURRENCY}",
            "-Q",
            f"{INSERT_QUEUE},{JOBS_QUEUE}",
            "-n",
            f"sentinel-worker-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]

    def ready(self) -> bool:
        return self.pid() is not None and self.log_contains(" ready.")


class Beat(AppProcess):
    name = "beat"

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "celery"),
            "-A",
            "beat.app",
            "beat",
            "--loglevel=INFO",
            "-s",
            str(self.home / "celerybeat-schedule"),
            "--pidfile=",
        ]

    def ready(self) -> bool:
        return self.alive_for(1.0)


class Flower(AppProcess):
    name = "flower"

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.FLOWER_PORT

    @property
    def auth_path(self) -> Path:
        return self.home / "basic_auth"

    def credentials(self) -> str:
        """`user:password` from SENTINEL_FLOWER_BASIC_AUTH, else one generated once and kept (0600)."""
        if settings.FLOWER_BASIC_AUTH:
            return settings.FLOWER_BASIC_AUTH
        if not self.auth_path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            self.auth_path.touch(mode=0o600)
            self.auth_path.write_text(f"sentinel:{secrets.token_urlsafe(18)}")
        return self.auth_path.read_text().strip()

    def argv(self) -> list[str]:
        return [
            str(VENV_BIN / "celery"),
            "-A",
            "workers.celery_app",
            "flower",
            f"--address={settings.HOST}",
            f"--port={settings.FLOWER_PORT}",
        ]

    def env(self) -> dict[str, str]:
        # Through Flower's own environment variable, not argv, so the password is not in `ps`.
        return process_env(FLOWER_BASIC_AUTH=self.credentials())

    def addresses(self) -> dict[str, str]:
        user = self.credentials().split(":", 1)[0]
        where = "SENTINEL_FLOWER_BASIC_AUTH" if settings.FLOWER_BASIC_AUTH else str(self.auth_path)
        return {
            "ui": f"http://{settings.HOST}:{settings.FLOWER_PORT}",
            "user": user,
            "password": f"in {where}",
            "log": str(self.log_path),
        }


PROCESSES: tuple[AppProcess, ...] = (Worker(), Bridge(), Ingest(), Beat(), Flower())


def get(name: str) -> AppProcess:
    for process in PROCESSES:
        if process.name == name:
            return process
    raise KeyError(f"no process named {name!r}; known: {', '.join(p.name for p in PROCESSES)}")

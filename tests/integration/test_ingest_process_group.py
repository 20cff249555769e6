"""`python -m sentinel_local.ingest_serve`: nginx and the granian servers (one per worker process) as one unit.
nginx shares the requests between the servers. When a granian master is killed outright, the unit
stops, and no worker process (they do not watch for their parent) may outlive it and keep an
upstream port, or the restarted ingest could not bind it. With a Unix socket upstream (the
local stack's), the unit removes the socket file as it stops, and a start binds over one that a unit
killed outright left behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ingest_app import server
from sentinel import settings
from sentinel_local import processes
from sentinel_local.ingest_serve import group_members
from sentinel_local.stack.runner import port_open
from tests.e2e.helpers import wait_until
from tests.faults.harness import child_pids

# Ports of their own, away from the running stack's ingest.
PORT = 18480
UPSTREAM_PORT = 18481


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _start(home: Path, socket_path: Path | None) -> subprocess.Popen[bytes]:
    conf = home / "nginx.conf"
    upstreams = [socket_path] if socket_path is not None else server.upstreams(None, UPSTREAM_PORT)
    conf.write_text(processes.nginx_config(PORT, upstreams, home))
    env = {
        **os.environ,
        "SENTINEL_INGEST_PORT": str(PORT),
        "SENTINEL_INGEST_UPSTREAM_PORT": str(UPSTREAM_PORT),
        "OTEL_SDK_DISABLED": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(home),
    }
    command = [sys.executable, "-m", "sentinel_local.ingest_serve", "--nginx-conf", str(conf)]
    if socket_path is not None:
        command += ["--upstream-socket", str(socket_path)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(40)


@pytest.fixture
def home() -> Iterator[Path]:
    """The unit's folder: searchable by nginx's worker (`nobody` under root), as pytest's are not."""
    if not processes.get("ingest").installed():
        pytest.fail("nginx is not installed: run `make test` (or `.venv/bin/sentinel stack up`), which installs it")
    folder = Path(tempfile.mkdtemp(prefix="sentinel-ingest-unit-", dir="/tmp"))
    folder.chmod(0o755)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "nginx-temp" / sub).mkdir(parents=True)
        (folder / "nginx-temp" / sub).chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def serve(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = _start(home, None)
    try:
        yield proc
    finally:
        _stop(proc)


def _answers_through_nginx() -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def _masters(unit: subprocess.Popen[bytes]) -> list[int]:
    return [pid for pid in child_pids(unit.pid) if "-m granian" in _cmdline(pid)]


def _app_servers_listening() -> list[int]:
    """The app servers' ports, once every one of them listens."""
    ports = server.upstreams(None, UPSTREAM_PORT)
    wait_until(lambda: all(map(port_open, ports)), timeout_s=60, what="every app server to listen")
    return ports


def test_killing_a_granian_master_stops_the_unit_and_leaves_no_worker_holding_a_port(
    serve: subprocess.Popen[bytes],
) -> None:
    ports = _app_servers_listening()
    assert len(ports) == settings.INGEST_WORKERS > 1  # an app server per worker process
    masters = _masters(serve)
    assert len(masters) == len(ports), [_cmdline(pid) for pid in child_pids(serve.pid)]
    for master in masters:
        wait_until(lambda m=master: len(child_pids(m)) >= 1, timeout_s=30, what="granian's worker process")
    workers = [pid for master in masters for pid in child_pids(master)]

    os.kill(masters[0], signal.SIGKILL)

    assert serve.wait(30) == 1  # the unit failed, and says so to its supervisor
    assert all(group_members(master) == [] for master in masters)
    assert not any(Path(f"/proc/{pid}").exists() and "-m granian" in _cmdline(pid) for pid in workers)
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))  # free for the next start


def test_a_normal_stop_stops_the_whole_group(serve: subprocess.Popen[bytes]) -> None:
    ports = _app_servers_listening()
    masters = _masters(serve)
    serve.terminate()
    assert serve.wait(40) == 0
    assert all(group_members(master) == [] for master in masters)
    assert not any(map(port_open, [*ports, PORT]))


def test_nginx_shares_the_requests_between_the_app_servers(serve: subprocess.Popen[bytes], home: Path) -> None:
    ports = _app_servers_listening()
    wait_until(_answers_through_nginx, timeout_s=30, what="nginx to reach the app servers")
    for _ in range(20):
        # Refused by the app (not JSON), which counts it: no Kafka needed.
        response = requests.post(f"http://127.0.0.1:{PORT}/events", data=b"{", timeout=5)
        assert response.status_code == 400, response.text
    workers = {pid for master in _masters(serve) for pid in child_pids(master)}
    # Each process that counted a request keeps its own file (prometheus_client's multiprocess mode).
    counted = {int(path.stem.rsplit("_", 1)[1]) for path in home.glob("counter_*.db")}
    # Every server is one of nginx's upstreams and gets its share (tests/unit/test_ingest_upstream.py
    # checks that nginx picks the one with the fewest requests in flight).
    assert len(workers & counted) == len(ports), (workers, counted)


def test_a_killed_server_s_socket_is_removed_by_the_unit(home: Path) -> None:
    socket_path = home / "granian.sock"
    first = _start(home, socket_path)
    try:
        wait_until(lambda: processes.listening(socket_path), timeout_s=60, what="granian to listen on its socket")
        wait_until(_answers_through_nginx, timeout_s=30, what="nginx to reach granian on its socket")
        os.kill(_masters(first)[0], signal.SIGKILL)
        assert first.wait(30) == 1
    finally:
        _stop(first)
    assert not socket_path.exists()  # granian left it; the unit removed it as it stopped


def test_a_stale_socket_does_not_stop_the_next_start(home: Path) -> None:
    """A unit killed outright (SIGKILL to all of it) leaves granian's socket file: the next start binds."""
    socket_path = home / "granian.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(socket_path))  # closed without unlink: a file nobody listens on
    assert socket_path.exists() and not processes.listening(socket_path)

    second = _start(home, socket_path)
    try:
        wait_until(_answers_through_nginx, timeout_s=60, what="the unit to answer through nginx")
    finally:
        _stop(second)
    assert second.returncode == 0
    assert not socket_path.exists()  # a normal stop removes it

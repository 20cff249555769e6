"""`python -m ingest_app.serve`: nginx and granian as one unit. When the granian master is killed
outright, its worker processes (which do not watch for their parent) must not outlive the unit and
keep the upstream port, or the restarted ingest could not bind it. With a Unix socket upstream (the
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

from ingest_app.serve import group_members
from sentinel import processes
from sentinel.stack.runner import port_open
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
    conf.write_text(processes.nginx_config(PORT, socket_path or UPSTREAM_PORT, home))
    env = {
        **os.environ,
        "SENTINEL_INGEST_PORT": str(PORT),
        "SENTINEL_INGEST_UPSTREAM_PORT": str(UPSTREAM_PORT),
        "OTEL_SDK_DISABLED": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(home),
    }
    command = [sys.executable, "-m", "ingest_app.serve", "--nginx-conf", str(conf)]
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


def _socket_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def _answers_through_nginx() -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


def test_killing_the_granian_master_leaves_no_worker_holding_the_port(serve: subprocess.Popen[bytes]) -> None:
    wait_until(lambda: port_open(UPSTREAM_PORT), timeout_s=60, what="granian to listen")
    masters = [pid for pid in child_pids(serve.pid) if "-m granian" in _cmdline(pid)]
    assert len(masters) == 1, [_cmdline(pid) for pid in child_pids(serve.pid)]
    master = masters[0]
    wait_until(lambda: len(child_pids(master)) >= 2, timeout_s=30, what="granian's worker processes")
    workers = child_pids(master)

    os.kill(master, signal.SIGKILL)

    assert serve.wait(30) == 1  # the unit failed, and says so to its supervisor
    assert group_members(master) == []
    assert not any(Path(f"/proc/{pid}").exists() and "-m granian" in _cmdline(pid) for pid in workers)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", UPSTREAM_PORT))  # free for the next start


def test_a_normal_stop_stops_the_whole_group(serve: subprocess.Popen[bytes]) -> None:
    wait_until(lambda: port_open(UPSTREAM_PORT), timeout_s=60, what="granian to listen")
    master = next(pid for pid in child_pids(serve.pid) if "-m granian" in _cmdline(pid))
    serve.terminate()
    assert serve.wait(40) == 0
    assert group_members(master) == []
    assert not port_open(UPSTREAM_PORT) and not port_open(PORT)


def test_a_killed_server_s_socket_is_removed_by_the_unit(home: Path) -> None:
    socket_path = home / "granian.sock"
    first = _start(home, socket_path)
    try:
        wait_until(lambda: _socket_accepts(socket_path), timeout_s=60, what="granian to listen on its socket")
        wait_until(_answers_through_nginx, timeout_s=30, what="nginx to reach granian on its socket")
        master = next(pid for pid in child_pids(first.pid) if "-m granian" in _cmdline(pid))
        os.kill(master, signal.SIGKILL)
        assert first.wait(30) == 1
    finally:
        _stop(first)
    assert not socket_path.exists()  # granian left it; the unit removed it as it stopped


def test_a_stale_socket_does_not_stop_the_next_start(home: Path) -> None:
    """A unit killed outright (SIGKILL to all of it) leaves granian's socket file: the next start binds."""
    socket_path = home / "granian.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(socket_path))  # closed without unlink: a file nobody listens on
    assert socket_path.exists() and not _socket_accepts(socket_path)

    second = _start(home, socket_path)
    try:
        wait_until(_answers_through_nginx, timeout_s=60, what="the unit to answer through nginx")
    finally:
        _stop(second)
    assert second.returncode == 0
    assert not socket_path.exists()  # a normal stop removes it

"""`python -m ingest_app.serve`: nginx and granian as one unit. When the granian master is killed
outright, its worker processes (which do not watch for their parent) must not outlive the unit and
keep the upstream port, or the restarted ingest could not bind it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture
def serve(tmp_path: Path) -> subprocess.Popen[bytes]:
    if not processes.get("ingest").installed():
        pytest.fail("nginx is not installed: run `make test` (or `.venv/bin/sentinel stack up`), which installs it")
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "nginx-temp" / sub).mkdir(parents=True)
        (tmp_path / "nginx-temp" / sub).chmod(0o777)
    conf = tmp_path / "nginx.conf"
    conf.write_text(processes.nginx_config(PORT, UPSTREAM_PORT, tmp_path))
    env = {
        **os.environ,
        "SENTINEL_INGEST_PORT": str(PORT),
        "SENTINEL_INGEST_UPSTREAM_PORT": str(UPSTREAM_PORT),
        "OTEL_SDK_DISABLED": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest_app.serve", "--nginx-conf", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(40)


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

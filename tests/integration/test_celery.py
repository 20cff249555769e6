"""Real Celery: a task goes through RabbitMQ to a separate worker process, its result comes back via Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sentinel import settings
from tests.integration.celery_echo import QUEUE, echo


def test_task_round_trip_on_a_real_worker() -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.integration.celery_echo",
            "worker",
            "-P",
            "solo",
            "-Q",
            QUEUE,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            "-n",
            f"echo-{os.getpid()}@%h",
        ],
        cwd=settings.REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(settings.REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        started = time.monotonic()
        result = echo.delay("ping")
        value = result.get(timeout=60)
        assert value["echo"] == "ping"
        assert value["pid"] != str(os.getpid())  # ran in the worker, not here
        assert result.backend.__class__.__name__ == "RedisBackend"
        assert time.monotonic() - started < 60
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()

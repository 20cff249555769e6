"""A `python -m workers.bridge` of a test's own: its topic, consumer group, folder, metrics port and
settings, beside the pipeline's bridge (which it shares Kafka, RabbitMQ, Redis and the worker with)."""

from __future__ import annotations

import socket

from sentinel import settings
from sentinel_local import processes


class PrivateBridge(processes.Bridge):
    def __init__(self, name: str, topic: str, group: str, **environment: str) -> None:
        """`environment`: more variables for the process, e.g. SENTINEL_CHUNK_MAX_WAIT_S="120"."""
        super().__init__()
        self.name = name  # its folder, log and pid file under the stack folder
        self.topic, self.group = topic, group
        self.environment = environment
        with socket.socket() as probe:
            probe.bind((settings.HOST, 0))
            self.metrics_port = probe.getsockname()[1]

    def env(self) -> dict[str, str]:
        return processes.process_env(
            PROMETHEUS_MULTIPROC_DIR=str(self.home / "prometheus"),
            SENTINEL_EVENTS_TOPIC=self.topic,
            SENTINEL_BRIDGE_GROUP=self.group,
            SENTINEL_BRIDGE_METRICS_PORT=str(self.metrics_port),
            **self.environment,
        )

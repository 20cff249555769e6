"""Several bridge consumers under one `python -m workers.bridge` (workers/bridge/supervisor.py),
on real Kafka, RabbitMQ and Redis: they share the partitions, serve one /metrics, and stop together."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from confluent_kafka.admin import AdminClient, NewTopic

from sentinel import settings
from tests.e2e.helpers import wait_until
from tests.faults.harness import child_pids
from tests.private_bridge import PrivateBridge

PARTITIONS = 4


@pytest.fixture
def bridge() -> Iterator[PrivateBridge]:
    topic = f"sentinel.test.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(timeout=30)
    # Two consumers in one process (the default's value, set here so the test does not follow it).
    process = PrivateBridge(
        "bridge-consumers-test", topic, f"sentinel-test-{uuid.uuid4().hex[:8]}", SENTINEL_BRIDGE_CONSUMERS="2"
    )
    try:
        yield process
    finally:
        process.down()
        admin.delete_topics([topic])[topic].result(timeout=30)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _assigned(log: Path) -> set[int]:
    """Partitions held after the last assignment of each consumer (pids in no log line: by order)."""
    lines = re.findall(r"assigned partitions \[([\d, ]*)\]", log.read_text())
    return {int(p) for line in lines[-2:] for p in line.split(",") if p.strip()}


def test_two_consumers_share_the_partitions_and_one_metrics_endpoint(bridge: PrivateBridge) -> None:
    bridge.up()
    parent = bridge.pid()
    assert parent is not None
    consumers = child_pids(parent)
    assert len(consumers) == 2, f"expected 2 consumer processes under {parent}, found {consumers}"
    wait_until(
        lambda: len(re.findall("assigned partitions", bridge.log_path.read_text())) >= 2,
        what="both assignments",
        timeout_s=60,
    )
    wait_until(
        lambda: _assigned(bridge.log_path) == set(range(PARTITIONS)),
        what="every partition to be assigned",
        timeout_s=60,
    )
    scrape = requests.get(f"http://{settings.HOST}:{bridge.metrics_port}/metrics", timeout=5)
    assert scrape.ok and "sentinel_bridge_inflight_chunks" in scrape.text
    # The broker waits for both (group.initial.rebalance.delay.ms): no consumer was handed every
    # partition only to give them up to the next one, re-reading its open chunks.
    log = bridge.log_path.read_text()
    assert "revoking partitions" not in log, f"the consumers were assigned in more than one round:\n{log}"


def test_a_consumer_that_dies_stops_the_bridge(bridge: PrivateBridge) -> None:
    bridge.up()
    parent = bridge.pid()
    assert parent is not None
    first, second = child_pids(parent)
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: not _alive(parent) and not _alive(second),
        what="the parent and the other consumer to exit",
        timeout_s=30,
    )
    assert f"bridge consumer {first} exited with -9; stopping the others" in bridge.log_path.read_text()


def test_consumers_stop_when_the_parent_is_killed(bridge: PrivateBridge) -> None:
    bridge.up()
    parent = bridge.pid()
    assert parent is not None
    consumers = child_pids(parent)
    os.kill(parent, signal.SIGKILL)  # the parent alone: the kernel tells each consumer (PR_SET_PDEATHSIG)
    wait_until(lambda: not any(_alive(pid) for pid in consumers), what="the orphaned consumers to exit", timeout_s=30)
    assert bridge.log_path.read_text().count("bridge stopped;") == 2


def test_sigterm_stops_every_consumer_cleanly(bridge: PrivateBridge) -> None:
    bridge.up()
    parent = bridge.pid()
    assert parent is not None
    consumers = child_pids(parent)
    assert bridge.down()
    assert not any(_alive(pid) for pid in [parent, *consumers])
    assert bridge.log_path.read_text().count("bridge stopped;") == 2

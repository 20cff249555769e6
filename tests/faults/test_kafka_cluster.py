"""One broker of the three-broker cluster SIGKILLed under load, then restarted.

`mcp.events` has three replicas and min.insync.replicas=2, so with one broker gone every write still
has two in-sync replicas: ingest must refuse nothing (no 503), nothing may be lost or read twice, and
the restarted broker must catch up into every ISR. The node killed is the active KRaft controller
(each node is a broker and a controller), so the same kill is also a controller failover, and it
leads some of the topic's partitions, so those move to another broker.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from confluent_kafka.admin import AdminClient

from sentinel import settings
from sentinel_local.stack.kafka import Kafka, KafkaNode
from tests.e2e.helpers import wait_until
from tests.faults.conftest import Faults

pytestmark = pytest.mark.faults

BROKERS = 3
# The scale for this fault, whatever SENTINEL_FAULT_EVENTS says.
EVENTS = 20_000
KILL_AT_S = 8.0
DOWN_FOR_S = 15.0


def _partitions(admin: AdminClient) -> dict[int, tuple[int, list[int]]]:
    """mcp.events: partition -> (leader, in-sync replicas)."""
    topic = admin.list_topics(settings.EVENTS_TOPIC, timeout=10).topics[settings.EVENTS_TOPIC]
    return {p: (m.leader, list(m.isrs)) for p, m in topic.partitions.items()}


def _cluster(faults: Faults) -> Kafka:
    kafka = faults.service("kafka")
    if not isinstance(kafka, Kafka) or len(kafka.nodes) != BROKERS:
        pytest.fail(
            f"this fault needs the three-broker Kafka, and the stack runs {settings.KAFKA_BROKERS}. Start it with"
            " `SENTINEL_KAFKA_BROKERS=3 .venv/bin/sentinel stack up` after `.venv/bin/sentinel down`"
            " (`make test` sets SENTINEL_KAFKA_BROKERS=3 itself)",
            pytrace=False,
        )
    return kafka


def test_one_of_three_brokers_killed_then_restarted(faults: Faults) -> None:
    kafka = _cluster(faults)
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    replicas = {p: isr for p, (_, isr) in _partitions(admin).items()}
    assert all(len(isr) == BROKERS for isr in replicas.values()), f"replicas out of sync before the run: {replicas}"
    with faults.run("one of three Kafka brokers SIGKILLed, restarted", duration_s=40, events=EVENTS) as run:
        run.at(KILL_AT_S)
        controller = kafka.active_controller()
        assert isinstance(controller, KafkaNode), "no active controller found among the nodes"
        leaders = {leader for leader, _ in _partitions(admin).values()}
        # The controller when it also leads a partition (both failovers at once); with two
        # partitions on three brokers it may lead none, and then a partition's leader.
        victim = controller if controller.node_id in leaders else next(n for n in kafka.nodes if n.node_id in leaders)
        pid = victim.pid()
        assert pid, f"{victim.name} is not running"
        led = sorted(p for p, (leader, _) in _partitions(admin).items() if leader == victim.node_id)
        os.killpg(pid, signal.SIGKILL)
        killed = run.mark(f"{victim.name} killed")
        wait_until(lambda: victim.pid() is None, timeout_s=10, what=f"the killed {victim.name} to be gone")

        def new_controller() -> KafkaNode | None:
            node = kafka.active_controller()
            return node if node is not None and node is not victim else None

        successor = wait_until(new_controller, timeout_s=30, interval_s=0.1, what="an active controller")
        elected_s = time.monotonic() - run.load.started_at - killed
        wait_until(
            lambda: all(leader != victim.node_id for leader, _ in _partitions(admin).values()),
            timeout_s=30,
            interval_s=0.1,
            what=f"new leaders for the partitions {victim.name} led",
        )
        moved_s = time.monotonic() - run.load.started_at - killed
        run.at(killed + DOWN_FOR_S)
        victim.up()
        restarted = run.mark(f"{victim.name} restarted")
    wait_until(
        lambda: all(len(isr) == BROKERS for _, isr in _partitions(admin).values()),
        timeout_s=120,
        what=f"{victim.name} back in every ISR of {settings.EVENTS_TOPIC}",
    )
    in_sync_s = time.monotonic() - run.load.started_at - restarted
    failover = (
        f"controller node {victim.node_id} -> {successor.node_id} after {elected_s:.1f} s"
        if controller is victim
        else f"the controller (node {controller.node_id}) kept its role"
    )
    run.figures.details = (
        f"node {victim.node_id} killed at {killed:.1f} s, leading partitions {led}; {failover};"
        f" its partitions led elsewhere after {moved_s:.1f} s; restarted after {DOWN_FOR_S:.0f} s,"
        f" in every ISR {in_sync_s:.1f} s later"
    )
    run.verify()

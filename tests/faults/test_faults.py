"""One fault per test, under load through the running pipeline (ingest, bridge, worker as processes).

Each test sends SENTINEL_FAULT_EVENTS events (3,000 by default, 20,000 at full scale) spread over
a few tens of seconds, breaks one thing in the middle, puts it back, lets the pipeline drain, and
verifies: every event answered 202 is in ClickHouse, none is read twice with FINAL, and no
committed offset ever passed an event that was not stored or dead-lettered (tests/faults/harness.py).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest

from sentinel import settings
from sentinel_local import processes
from sentinel_local.stack.runner import port_open
from tests.e2e.helpers import wait_until
from tests.faults.conftest import Faults
from tests.faults.harness import kill_mid_insert

pytestmark = pytest.mark.faults

CLICKHOUSE_OUTAGE_S = 30.0
COLLECTOR_OUTAGE_S = 30.0
KAFKA_OUTAGE_S = 20.0
# Joins of the second bridge before it is given a partition (each misses with a chance of 1 in 6,
# all four with 1 in 1,296).
JOIN_ATTEMPTS = 4


class SecondBridge(processes.Bridge):
    """Another `python -m workers.bridge` in the same group, with its own pid file, log and metrics port."""

    name = "bridge-2"

    def env(self) -> dict[str, str]:
        with socket.socket() as probe:
            probe.bind((settings.HOST, 0))
            free = probe.getsockname()[1]
        return processes.process_env(SENTINEL_BRIDGE_METRICS_PORT=str(free))


def _holds_partitions(bridge: processes.Bridge) -> bool:
    """Whether any of the bridge's consumers was assigned a partition since its latest start."""
    since_start = bridge.log_path.read_text().rpartition("=== start")[2]
    assignments = re.findall(r"assigned partitions \[([^\]]*)\]", since_start)
    return any(assignments)


def test_worker_killed_in_the_middle_of_an_insert(faults: Faults) -> None:
    worker = faults.process("worker")
    with faults.run("worker killed (SIGKILL) mid-insert", duration_s=30) as run:
        caught = []
        for at in (4, 12):  # a prefork child: the parent requeues its task (reject_on_worker_lost)
            run.at(at)
            caught.append(kill_mid_insert(_pid_of(worker)))
            run.mark(f"child {caught[-1]} killed")
        run.at(20)  # the whole worker: RabbitMQ takes the unacknowledged tasks back
        caught.append(kill_mid_insert(_pid_of(worker), whole_worker=True))
        wait_until(lambda: worker.pid() is None, timeout_s=10, what="the killed worker to be gone")
        run.mark("worker killed")
        worker.up()
        run.mark("worker started")
    run.expect(all(caught), f"not every kill caught a child mid-insert: {caught}")
    run.verify()


def test_clickhouse_stopped_for_30_s_then_started(faults: Faults) -> None:
    clickhouse = faults.service("clickhouse")
    with faults.run("ClickHouse stopped 30 s", duration_s=50) as run:
        run.at(5)
        clickhouse.down()
        stopped = run.mark("clickhouse stopped")
        run.expect(not port_open(clickhouse.port), "ClickHouse still answered after it was stopped")
        run.at(stopped + CLICKHOUSE_OUTAGE_S)
        clickhouse.up()
        run.mark("clickhouse started")
    run.verify()


def test_collector_stopped_for_30_s_then_started(faults: Faults) -> None:
    # Spans may be lost while it is away (each process's exporter retries, then drops); events may not.
    collector = faults.service("otelcol")
    with faults.run("OpenTelemetry Collector stopped 30 s", duration_s=50) as run:
        run.at(5)
        collector.down()
        stopped = run.mark("collector stopped")
        run.expect(not port_open(collector.port), "the Collector still answered after it was stopped")
        run.at(stopped + COLLECTOR_OUTAGE_S)
        collector.up()
        run.mark("collector started")
    run.verify()


def test_rabbitmq_restarted(faults: Faults) -> None:
    rabbitmq = faults.service("rabbitmq")
    with faults.run("RabbitMQ restarted", duration_s=35) as run:
        run.at(6)
        rabbitmq.down()
        run.mark("rabbitmq stopped")
        rabbitmq.up()
        run.mark("rabbitmq started")
    run.verify()


def test_redis_restarted(faults: Faults) -> None:
    redis = faults.service("redis")
    with faults.run("Redis restarted", duration_s=30) as run:
        run.at(6)
        redis.down()
        run.mark("redis stopped")
        redis.up()
        run.mark("redis started")
    run.verify()


def test_kafka_broker_restarted(faults: Faults) -> None:
    kafka = faults.service("kafka")
    # Every broker: with Kafka wholly away ingest must refuse (503), whatever the cluster's size.
    brokers = settings.KAFKA_BROKERS
    fault = "Kafka broker restarted" if brokers == 1 else f"Kafka ({brokers} brokers) restarted"
    # Three nodes take up to ~40 s to start again on two busy cores (a quorum, then every broker
    # registered); the load must outlast that to see ingest accept again.
    with faults.run(fault, duration_s=50 if brokers == 1 else 90, ingest_affected=True) as run:
        run.at(5)
        kafka.down()
        stopped = run.mark("kafka stopped")
        run.at(stopped + KAFKA_OUTAGE_S)
        restarting = run.mark("kafka starting")
        kafka.up()
        started = run.mark("kafka started")
    load = run.load
    refused_while_down = load.answered(503, between=(stopped, restarting))
    run.expect(bool(refused_while_down), "no request sent while Kafka was down was answered 503")
    without_retry_after = [a for a in load.answered(503) if not a.retry_after]
    run.expect(not without_retry_after, f"{len(without_retry_after)} 503 answer(s) without Retry-After")
    accepted_while_down = [a for a in load.answered(202) if stopped < a.started and a.finished < restarting]
    run.expect(not accepted_while_down, f"{len(accepted_while_down)} request(s) answered 202 while Kafka was down")
    run.expect(
        bool(load.answered(202, between=(started, float("inf")))), "ingest accepted nothing after Kafka came back"
    )
    unexpected = {k: v for k, v in load.statuses().items() if k not in ("202", "503")}
    run.expect(not unexpected, f"answers other than 202 and 503: {unexpected}")
    run.verify()


def test_bridge_killed_and_started_again(faults: Faults) -> None:
    bridge = faults.process("bridge")
    with faults.run("bridge killed (SIGKILL) and restarted", duration_s=30) as run:
        run.at(8)
        killed = _pid_of(bridge)
        os.killpg(killed, signal.SIGKILL)
        wait_until(lambda: bridge.pid() is None, timeout_s=10, what="the killed bridge to be gone")
        run.mark("bridge killed")
        bridge.up()  # ready once it is assigned partitions, after the dead member's session expired
        run.mark("bridge started")
    run.expect(bridge.pid() not in (None, killed), "the bridge did not come back as a new process")
    run.verify()


def test_second_bridge_joins_and_leaves_the_group(faults: Faults) -> None:
    first = faults.process("bridge")
    second = faults.extra(SecondBridge())
    with faults.run("second bridge joins, then leaves (rebalance)", duration_s=40) as run:
        run.at(6)
        for _ in range(JOIN_ATTEMPTS):
            second.up()
            if _holds_partitions(second):
                break
            # Four consumers, two partitions: the range assignor gives them to the two lowest
            # member ids, both the first bridge's in one join out of six. Its ids stay while it
            # runs, so joins with new ids for the second bridge alone were not independent tries:
            # low first ids lost again and again (four joins failed ~1 run in 45; seen in CI).
            # Both start again, both with new ids.
            second.down()
            first.down()
            first.up()
        joined = run.mark("second bridge assigned")
        run.at(joined + 12)
        second.down()  # SIGTERM: it settles what it can, commits, and leaves the group
        run.mark("second bridge left")
        time.sleep(1)
    run.expect("revoking partitions" in first.log_path.read_text(), "the first bridge never gave up partitions")
    assigned = re.search(r"assigned partitions \[\d", second.log_path.read_text())
    run.expect(assigned is not None, "the second bridge was never assigned a partition")
    run.verify()


def _pid_of(process: processes.AppProcess) -> int:
    # Never 0: os.killpg(0, ...) would signal the test's own process group.
    pid = process.pid()
    assert pid, f"{process.name} is not running (see {process.log_path})"
    return pid

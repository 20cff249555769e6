"""sentinel_local.processes.bridge_settled: when the bridge's log says its consumer group has settled."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel import settings
from sentinel_local.processes import Bridge, bridge_settled


def _log(*messages: str) -> str:
    return "".join(f'{{"level":"info","service":"sentinel-bridge","msg":"{m}"}}\n' for m in messages)


RUNNING_2 = "bridge running 2 consumers: pids [11, 12]"
CONSUMING = "bridge consuming mcp.events as group sentinel-bridge"


def test_one_consumer_is_settled_at_its_first_assignment() -> None:
    assert not bridge_settled(_log(CONSUMING))
    assert bridge_settled(_log(CONSUMING, "assigned partitions [0, 1, 2, 3]"))


def test_the_first_of_two_consumers_holding_everything_is_not_settled() -> None:
    first_only = (RUNNING_2, CONSUMING, "assigned partitions [0, 1, 2, 3]", CONSUMING)
    assert not bridge_settled(_log(*first_only))
    split = (*first_only, "revoking partitions [0, 1, 2, 3]", "assigned partitions [0, 1]")
    assert not bridge_settled(_log(*split))
    assert bridge_settled(_log(*split, "assigned partitions [2, 3]"))


def test_consumers_assigned_in_one_round_are_settled() -> None:
    log = _log(RUNNING_2, CONSUMING, CONSUMING, "assigned partitions [0, 1]", "assigned partitions [2, 3]")
    assert bridge_settled(log)


def test_every_consumer_must_run_its_loop() -> None:
    assert not bridge_settled(_log(RUNNING_2, CONSUMING, "assigned partitions [0, 1]", "assigned partitions [2, 3]"))


def test_lost_partitions_unsettle_the_group_until_reassigned() -> None:
    settled = (RUNNING_2, CONSUMING, CONSUMING, "assigned partitions [0, 1]", "assigned partitions [2, 3]")
    lost = (*settled, "partitions lost [0, 1]; nothing committed for them")
    assert not bridge_settled(_log(*lost))
    assert bridge_settled(_log(*lost, "assigned partitions [0, 1]", "assigned partitions [2, 3]"))


def test_a_reassignment_after_a_long_outage_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Kafka restart: the consumers lose their partitions, librdkafka logs a failed connect ~40
    # times a second until the broker is back, then the group is reassigned. Past 256 KiB of that,
    # the bridge was once taken for unsettled and stopped by `up`.
    monkeypatch.setattr(settings, "STACK_DIR", tmp_path)
    bridge = Bridge()
    monkeypatch.setattr(bridge, "pid", lambda: 4242)
    noise = "%3|1796634629.500|FAIL|rdkafka#consumer-1| [thrd:127.0.0.1:9092/bootstrap]: Connect failed\n" * 4000
    settled = (RUNNING_2, CONSUMING, CONSUMING, "assigned partitions [0]", "assigned partitions [1]")
    lost = ("partitions lost [0]; nothing committed for them", "partitions lost [1]; nothing committed for them")
    bridge.home.mkdir(parents=True)
    bridge.log_path.write_text(_log(*settled, *lost) + noise)
    assert bridge.log_path.stat().st_size > 256 * 1024
    assert not bridge.ready()
    with bridge.log_path.open("a") as log:
        log.write(_log("assigned partitions [1]", "assigned partitions [0]"))
    assert bridge.ready()

"""The emitter against the real pipeline: every event it is given reaches ClickHouse exactly once,
through an ingest outage and through a SIGKILL with events in its spool.

These run against the pipeline already running (`sentinel up`): ingest on its port, the bridge and
a worker. The outage test starts an ingest process of its own on another port, after the emitter
has spooled, so the shared ingest is never stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from prometheus_client import REGISTRY

from mcp_proxy.emitter import Emitter, EmitterConfig
from sentinel import settings
from sentinel_cli.emit import audit_event
from sentinel_local import processes
from tests.own_ingest import OwnIngest, free_port, own_ingest
from tests.stored_events import assert_all_stored

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline() -> None:
    """The running pipeline; fails, saying how to start it, when a part is missing."""
    # Asked the way a client would: the running processes may be another checkout's.
    down = [name for name in ("bridge", "worker") if processes.get(name).pid() is None]
    try:
        if not requests.get(f"{settings.INGEST_URL}/readyz", timeout=5).ok:
            down.append("ingest")
    except requests.RequestException:
        down.append("ingest")
    if down:
        pytest.fail(
            f"the pipeline is not running ({', '.join(down)} down): start it with `.venv/bin/sentinel up`",
            pytrace=False,
        )


def emitter_config(url: str, spool_dir: Path) -> EmitterConfig:
    return EmitterConfig(
        ingest_url=url,
        token=settings.PROXY_INGEST_TOKEN or None,
        spool_dir=spool_dir,
        spool_max_bytes=1 << 30,
        retry_max_s=1.0,
    )


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def spooled() -> float:
    return counter("sentinel_proxy_events_spooled_total")


@pytest.fixture(name="own_ingest")
def own_ingest_fixture() -> Iterator[OwnIngest]:
    """Not started: the test starts it when ingest should 'come back'."""
    with own_ingest("ingest-emitter-test") as ingest:
        yield ingest


def test_every_event_reaches_clickhouse_exactly_once(pipeline: None, tmp_path: Path) -> None:
    emitter = Emitter(emitter_config(settings.INGEST_URL, tmp_path))
    emitter.start()
    posted = counter("sentinel_proxy_events_posted_total")
    events = [audit_event(event_type="emitter.once") for _ in range(1000)]
    for event in events:
        emitter.submit(event)
    emitter.close(30.0)
    assert counter("sentinel_proxy_events_posted_total") == posted + 1000, "ingest did not answer 202 for every event"
    assert not list(tmp_path.glob("*/*.ndjson")), "with ingest up, nothing should have been spooled"
    assert_all_stored([event["event_id"] for event in events])


def test_events_spooled_while_ingest_is_down_all_arrive_when_it_comes_back(
    pipeline: None, own_ingest: OwnIngest, tmp_path: Path
) -> None:
    emitter = Emitter(emitter_config(f"http://{settings.HOST}:{own_ingest.port}", tmp_path))
    emitter.start()
    before = spooled()
    events = [audit_event(event_type="emitter.outage") for _ in range(600)]
    for index, event in enumerate(events):
        emitter.submit(event)
        if index % 100 == 99:
            time.sleep(0.05)  # several batches, so the spool holds several segments
    deadline = time.monotonic() + 30
    while spooled() < before + len(events):
        assert time.monotonic() < deadline, f"only {spooled() - before:.0f} of {len(events)} events spooled"
        time.sleep(0.05)
    assert len(list(tmp_path.glob("*/*.ndjson"))) > 1
    own_ingest.up()
    try:
        assert_all_stored([event["event_id"] for event in events], timeout_s=120)
    finally:
        emitter.close(10.0)
    assert not list(tmp_path.glob("*/*.ndjson")), "the spool should be empty once ingest took everything"


def test_a_sigkilled_process_s_spool_is_delivered_by_the_next_one(pipeline: None, tmp_path: Path) -> None:
    dead = f"http://{settings.HOST}:{free_port()}"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.emitter_child", str(tmp_path), dead, "800"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(settings.REPO_ROOT), "OTEL_SDK_DISABLED": "true"},
        text=True,
    )
    try:
        assert child.stdout is not None
        event_ids = orjson.loads(child.stdout.readline())
        assert child.stdout.readline().strip() == "spooled"
        time.sleep(0.3)  # it keeps submitting and spooling: the kill lands mid-work
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(event_ids) == 800
    # The restarted process, on the same folder, with ingest reachable again.
    emitter = Emitter(emitter_config(settings.INGEST_URL, tmp_path))
    emitter.start()
    try:
        assert_all_stored(event_ids, timeout_s=120)
    finally:
        emitter.close(10.0)

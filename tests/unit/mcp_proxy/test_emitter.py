"""The emitter against a real HTTP server of the test's own: batching, retries, drops, the spool."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from mcp_proxy.emitter import Emitter, EmitterConfig
from mcp_proxy.spool import DROP_NEWEST, Spool, read_segment
from tests.unit.mcp_proxy.fake_ingest import accept_all, fake_ingest


def event(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": "tool_call", "n": n, **extra}


def config(url: str, spool_dir: Path, **overrides: Any) -> EmitterConfig:
    base = EmitterConfig(
        ingest_url=url,
        token="t0ken",
        spool_dir=spool_dir,
        spool_max_bytes=1 << 24,
        batch_max_events=100,
        batch_max_s=0.05,
        retry_min_s=0.05,
        retry_max_s=0.2,
        connect_timeout_s=1.0,
        post_timeout_s=5.0,
    )
    return replace(base, **overrides)


@contextmanager
def running(cfg: EmitterConfig, close_timeout_s: float = 5.0) -> Iterator[Emitter]:
    emitter = Emitter(cfg)
    emitter.start()
    try:
        yield emitter
    finally:
        emitter.close(close_timeout_s)


def wait_for(probe: Callable[[], bool], timeout_s: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.01)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spooled_ids(spool_dir: Path) -> list[str]:
    spool = Spool(spool_dir, 1 << 30)
    try:
        segments = spool.lease(10**9, 1 << 40)
        return [orjson.loads(line)["event_id"] for s in segments for line in read_segment(s.path).lines]
    finally:
        spool.close()


def test_a_full_batch_is_posted_at_once_and_the_rest_when_its_time_is_up(tmp_path: Path) -> None:
    cfg = config("", tmp_path, batch_max_events=10, batch_max_s=0.3, post_max_events=10)
    with fake_ingest() as ingest, running(replace(cfg, ingest_url=ingest.url)) as em:
        events = [event(n) for n in range(25)]
        started = time.monotonic()
        for e in events:
            em.submit(e)
        wait_for(lambda: len(ingest.requests) >= 2, what="two full batches")
        assert time.monotonic() - started < 0.25, "full batches must not wait for the batch timer"
        assert [len(r) for r in ingest.requests] == [10, 10]
        wait_for(lambda: len(ingest.requests) == 3, what="the last, partial batch")
        assert time.monotonic() - started >= 0.25
    assert [len(r) for r in ingest.requests] == [10, 10, 5]
    assert ingest.accepted_ids() == [e["event_id"] for e in events]


def test_batches_waiting_behind_a_slow_post_go_together_in_the_next(tmp_path: Path) -> None:
    first = threading.Event()

    def slow_first(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not first.is_set():
            first.set()
            time.sleep(0.5)
        return accept_all(events)

    cfg = config("", tmp_path, batch_max_events=10, post_max_events=25, pending_batches=10)
    with fake_ingest(slow_first) as ingest, running(replace(cfg, ingest_url=ingest.url)) as em:
        events = [event(n) for n in range(10)]
        for e in events:
            em.submit(e)
        wait_for(first.is_set, what="the first POST")
        events += [event(n) for n in range(10, 40)]
        for e in events[10:]:
            em.submit(e)
        wait_for(lambda: len(ingest.accepted) == 40, what="every event")
    assert [len(r) for r in ingest.requests] == [10, 20, 10]  # at most post_max_events, whole batches
    assert ingest.accepted_ids() == [e["event_id"] for e in events]
    assert spooled_ids(tmp_path) == []


def test_batches_the_poster_cannot_take_yet_go_to_the_spool_not_memory_and_arrive_in_order(tmp_path: Path) -> None:
    def slow(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        time.sleep(0.2)
        return accept_all(events)

    spooled = counter("sentinel_proxy_events_spooled_total")
    cfg = config("", tmp_path, batch_max_events=10, post_max_events=10, pending_batches=1)
    with fake_ingest(slow) as ingest, running(replace(cfg, ingest_url=ingest.url)) as em:
        events = [event(n) for n in range(60)]
        for e in events:
            em.submit(e)
        wait_for(lambda: counter("sentinel_proxy_events_spooled_total") > spooled, what="a batch spooled")
        wait_for(lambda: len(ingest.accepted) == 60, what="every event")
    assert ingest.accepted_ids() == [e["event_id"] for e in events]
    assert spooled_ids(tmp_path) == []


def test_a_lone_event_is_posted_after_the_batch_time(tmp_path: Path) -> None:
    with fake_ingest() as ingest, running(config(ingest.url, tmp_path, batch_max_s=0.1)) as em:
        started = time.monotonic()
        em.submit(event())
        wait_for(lambda: ingest.requests, what="the POST")
        elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 1.0
    assert ingest.headers[0]["Authorization"] == "Bearer t0ken"


def test_batches_stay_under_ingests_body_and_count_limits(tmp_path: Path) -> None:
    padded = [event(n, pad="x" * 1000) for n in range(30)]  # ~1,080 bytes each
    cfg = config("", tmp_path, batch_max_events=500, max_body_bytes=4096, max_post_events=20)
    with fake_ingest() as ingest, running(replace(cfg, ingest_url=ingest.url)) as em:
        for e in padded:
            em.submit(e)
        wait_for(lambda: len(ingest.accepted) == 30, what="every event")
    assert all(len(r) <= 3 for r in ingest.requests)  # 4 would be over 4096 bytes
    assert ingest.accepted_ids() == [e["event_id"] for e in padded]


def test_close_flushes_what_is_queued(tmp_path: Path) -> None:
    with fake_ingest() as ingest:
        em = Emitter(config(ingest.url, tmp_path, batch_max_s=60.0))
        em.start()
        events = [event(n) for n in range(7)]
        for e in events:
            em.submit(e)
        em.close(5.0)
        assert ingest.accepted_ids() == [e["event_id"] for e in events]
        before = counter("sentinel_proxy_events_dropped_total", reason="closed")
        em.submit(event())  # after close: counted, not raised
        assert counter("sentinel_proxy_events_dropped_total", reason="closed") == before + 1


def test_a_503_is_retried_after_its_retry_after_with_the_events_spooled_meanwhile(tmp_path: Path) -> None:
    answers = iter([(503, {"error": "kafka_unavailable"}, {"Retry-After": "1"})])

    def flaky(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        return next(answers, None) or accept_all(events)

    retried = counter("sentinel_proxy_events_retried_total")
    with fake_ingest(flaky) as ingest, running(config(ingest.url, tmp_path)) as em:
        first = [event(n) for n in range(5)]
        for e in first:
            em.submit(e)
        wait_for(lambda: len(ingest.requests) == 1, what="the refused POST")
        refused_at = time.monotonic()
        later = [event(n) for n in range(5, 8)]
        for e in later:
            em.submit(e)
        wait_for(lambda: len(ingest.accepted) == 8, timeout_s=5, what="every event after the retry")
        assert time.monotonic() - refused_at >= 0.95, "Retry-After: 1 was not honoured"
    assert ingest.accepted_ids() == [e["event_id"] for e in first + later]  # in order
    assert counter("sentinel_proxy_events_retried_total") == retried + 5


def test_connection_refused_spools_everything_and_a_new_emitter_replays_it_first_in_order(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{dead_port()}"
    events = [event(n) for n in range(250)]
    spooled = counter("sentinel_proxy_events_spooled_total")
    with running(config(dead, tmp_path), close_timeout_s=1.0) as em:
        for e in events:
            em.submit(e)
        wait_for(lambda: counter("sentinel_proxy_events_spooled_total") == spooled + 250, what="all 250 spooled")
        assert REGISTRY.get_sample_value("sentinel_proxy_spool_bytes") > 0
    assert spooled_ids(tmp_path) == [e["event_id"] for e in events]
    fresh = [event(n) for n in range(250, 260)]
    with fake_ingest() as ingest, running(config(ingest.url, tmp_path)) as em:
        for e in fresh:
            em.submit(e)
        wait_for(lambda: len(ingest.accepted) == 260, what="the spool replayed, then the new events")
        wait_for(lambda: REGISTRY.get_sample_value("sentinel_proxy_spool_bytes") == 0, what="an empty spool")
    assert ingest.accepted_ids() == [e["event_id"] for e in events + fresh]
    assert spooled_ids(tmp_path) == []


def test_an_invalid_event_is_dropped_and_the_rest_of_its_batch_delivered(tmp_path: Path) -> None:
    def validating(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        for index, e in enumerate(events):
            if e.get("bad"):
                return 400, {"error": "invalid_event", "index": index, "detail": "type is required"}, {}
        return accept_all(events)

    dropped = counter("sentinel_proxy_events_dropped_total", reason="invalid_event")
    with fake_ingest(validating) as ingest, running(config(ingest.url, tmp_path, batch_max_s=0.2)) as em:
        events = [event(n, bad=n in (2, 5)) for n in range(8)]
        for e in events:
            em.submit(e)
        wait_for(lambda: len(ingest.accepted) == 6, what="the six valid events")
    assert ingest.accepted_ids() == [e["event_id"] for e in events if not e["bad"]]
    assert counter("sentinel_proxy_events_dropped_total", reason="invalid_event") == dropped + 2


def test_a_401_keeps_the_events_in_the_spool_until_a_proxy_with_the_right_token_posts_them(tmp_path: Path) -> None:
    def refusing(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        return 401, {"error": "unauthorized", "detail": "a valid bearer token is required"}, {}

    dropped = counter("sentinel_proxy_events_dropped_total", reason="unauthorized")
    events = [event(n) for n in range(5)]
    with fake_ingest(refusing) as ingest, running(config(ingest.url, tmp_path)) as em:
        for e in events:
            em.submit(e)
        wait_for(lambda: len(ingest.requests) >= 2, what="a retry of the refused batch")
    assert counter("sentinel_proxy_events_dropped_total", reason="unauthorized") == dropped
    assert spooled_ids(tmp_path) == [e["event_id"] for e in events]
    with fake_ingest(accept_all) as ingest, running(config(ingest.url, tmp_path)):
        wait_for(lambda: len(ingest.accepted) == 5, what="the spooled events, replayed")
    assert ingest.accepted_ids() == [e["event_id"] for e in events]


def test_a_413_splits_the_batch_until_each_part_fits(tmp_path: Path) -> None:
    def small_bodies(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if len(events) > 3:
            return 413, {"error": "body_too_large"}, {}
        return accept_all(events)

    with fake_ingest(small_bodies) as ingest, running(config(ingest.url, tmp_path)) as em:
        events = [event(n) for n in range(10)]
        for e in events:
            em.submit(e)
        wait_for(lambda: len(ingest.accepted) == 10, what="every part")
    assert ingest.accepted_ids() == [e["event_id"] for e in events]


def test_an_event_too_large_for_ingest_is_dropped_before_it_costs_its_batch(tmp_path: Path) -> None:
    dropped = counter("sentinel_proxy_events_dropped_total", reason="event_too_large")
    with fake_ingest() as ingest, running(config(ingest.url, tmp_path, max_event_bytes=200)) as em:
        em.submit(event(0, pad="x" * 300))
        em.submit(event(1))
        wait_for(lambda: len(ingest.accepted) == 1, what="the small event")
    assert counter("sentinel_proxy_events_dropped_total", reason="event_too_large") == dropped + 1


def test_an_event_over_the_body_limit_is_dropped_and_does_not_stall_the_batcher(tmp_path: Path) -> None:
    cfg = config("", tmp_path, max_body_bytes=500, max_event_bytes=10_000)
    with fake_ingest() as ingest, running(replace(cfg, ingest_url=ingest.url)) as em:
        em.submit(event(0, pad="x" * 600))
        em.submit(kept := event(1))
        wait_for(lambda: len(ingest.accepted) == 1, what="the event after the oversized one")
    assert ingest.accepted_ids() == [kept["event_id"]]


def test_a_full_spool_drops_newest_counts_and_keeps_what_it_holds(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{dead_port()}"
    dropped = counter("sentinel_proxy_events_dropped_total", reason="spool_full")
    cfg = config(dead, tmp_path, spool_max_bytes=20 * 120, spool_full=DROP_NEWEST)
    events = [event(n) for n in range(60)]  # ~110 bytes a line: about 20 fit
    with running(cfg, close_timeout_s=1.0) as em:
        for e in events:
            em.submit(e)
            time.sleep(0.002)
        wait_for(
            lambda: counter("sentinel_proxy_events_dropped_total", reason="spool_full") > dropped,
            what="the spool to fill",
        )
    kept = spooled_ids(tmp_path)
    assert 10 <= len(kept) < 60
    assert kept == [e["event_id"] for e in events[: len(kept)]]  # the oldest are kept, in order
    assert counter("sentinel_proxy_events_dropped_total", reason="spool_full") == dropped + 60 - len(kept)


def test_an_event_without_an_id_gets_one_before_it_can_be_posted_twice(tmp_path: Path) -> None:
    with fake_ingest() as ingest, running(config(ingest.url, tmp_path)) as em:
        em.submit({"type": "tool_call"})
        wait_for(lambda: ingest.accepted, what="the event")
    assert uuid.UUID(ingest.accepted[0]["event_id"])


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    em = Emitter(config("http://127.0.0.1:9", tmp_path, queue_max=3))  # not started: nothing drains it
    dropped = counter("sentinel_proxy_events_dropped_total", reason="queue_full")
    for n in range(5):
        em.submit(event(n))
    assert counter("sentinel_proxy_events_dropped_total", reason="queue_full") == dropped + 2


def test_submit_never_raises_on_what_json_cannot_hold(tmp_path: Path) -> None:
    dropped = counter("sentinel_proxy_events_dropped_total", reason="unserializable")
    with fake_ingest() as ingest, running(config(ingest.url, tmp_path)) as em:
        em.submit({"event_id": str(uuid.uuid4()), "type": "tool_call", "odd": {1: "int key"}})
        kept = event(1, when=uuid.uuid4())  # a value orjson cannot write: kept as its text
        em.submit(kept)
        wait_for(lambda: len(ingest.accepted) == 1, what="the event whose value became text")
    assert ingest.accepted[0]["when"] == str(kept["when"])
    assert counter("sentinel_proxy_events_dropped_total", reason="unserializable") == dropped + 1


def test_close_spools_what_a_hung_ingest_does_not_answer_in_time(tmp_path: Path) -> None:
    release = threading.Event()

    def hanging(events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        release.wait(10)
        return accept_all(events)

    with fake_ingest(hanging) as ingest:
        em = Emitter(config(ingest.url, tmp_path))
        em.start()
        events = [event(n) for n in range(5)]
        for e in events:
            em.submit(e)
        wait_for(lambda: ingest.requests, what="the POST to hang")
        started = time.monotonic()
        em.close(0.5)
        assert time.monotonic() - started < 3.0
        release.set()
    assert spooled_ids(tmp_path) == [e["event_id"] for e in events]


def test_two_emitters_on_one_data_folder_each_keep_their_own_spool(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{dead_port()}"
    with running(config(dead, tmp_path), 0.5) as one, running(config(dead, tmp_path), 0.5) as two:
        one.submit(event(1))
        two.submit(event(2))
        time.sleep(0.3)
    assert {p.name for p in tmp_path.iterdir()} >= {"0", "1"}


def test_a_slot_left_by_a_proxy_that_was_not_restarted_is_replayed_by_a_running_one(tmp_path: Path) -> None:
    held = Spool(tmp_path, 1 << 20)  # slot 0, a running proxy's
    dead = Spool(tmp_path, 1 << 20)  # slot 1, a proxy killed with events in its spool
    left = [event(n) for n in range(5)]
    dead.append(dead.next_seq(), [orjson.dumps(e) for e in left])
    dead.close()
    held.close()
    with fake_ingest() as ingest, running(config(ingest.url, tmp_path)) as em:  # takes slot 0
        wait_for(lambda: len(ingest.accepted) == 5, what="the dead proxy's events")
        em.submit(own := event(9))
        wait_for(lambda: len(ingest.accepted) == 6, what="this proxy's own event")
    assert ingest.accepted_ids() == [e["event_id"] for e in [*left, own]]
    assert not list((tmp_path / "1").glob("*.ndjson"))


@pytest.mark.parametrize("policy", ["drop-newest", "drop-oldest"])
def test_from_settings_reads_the_proxy_settings(tmp_path: Path, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentinel import settings

    monkeypatch.setattr(settings, "PROXY_SPOOL_FULL", policy)
    cfg = EmitterConfig.from_settings(spool_dir=tmp_path)
    assert (cfg.spool_dir, cfg.spool_full, cfg.ingest_url) == (tmp_path, policy, settings.PROXY_INGEST_URL)
    assert EmitterConfig.from_settings().spool_dir == settings.PROXY_DATA_DIR / "spool"

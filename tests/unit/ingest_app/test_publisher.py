"""ingest_app.publisher: a request's wait for its own delivery reports, on a thread (`_Delivery`) and on
an event loop (`publish_async`: a future resolved once its last report is in, by the report thread
waking the loop once per poll).

The report thread counts reports; the request says how many to expect once it has produced them.
Either may see the last report first, and the wait must end exactly once, then. The producer in the
loop's tests is a stand-in that reports when told to; publishing through Kafka itself is
tests/integration/test_kafka.py's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from ingest_app.publisher import (
    KafkaPublisher,
    OutgoingMessage,
    PublishUnavailable,
    _AsyncDelivery,
    _Delivery,
    _Finished,
)


def test_reports_that_arrive_before_expect_end_the_wait() -> None:
    delivery = _Delivery()
    delivery(None, None)
    delivery(None, None)
    delivery.expect(2)
    assert delivery.wait(0.0)
    assert delivery.error is None


def test_the_last_report_after_expect_ends_the_wait() -> None:
    delivery = _Delivery()
    delivery(None, None)
    delivery.expect(2)
    assert not delivery.wait(0.01)
    delivery(None, None)
    assert delivery.wait(0.0)


def test_a_report_from_another_thread_wakes_the_waiter() -> None:
    delivery = _Delivery()
    delivery.expect(1)
    threading.Timer(0.05, delivery, args=(None, None)).start()
    assert delivery.wait(5.0)
    assert delivery.delivered == 1


def test_missing_reports_time_out() -> None:
    delivery = _Delivery()
    delivery.expect(3)
    delivery(None, None)
    delivery(None, None)
    assert not delivery.wait(0.05)
    assert delivery.delivered == 2


def test_the_first_error_is_kept() -> None:
    first, second = KafkaError(KafkaError.REQUEST_TIMED_OUT), KafkaError(KafkaError.BROKER_NOT_AVAILABLE)
    delivery = _Delivery()
    delivery(first, None)
    delivery(second, None)
    delivery.expect(2)
    assert delivery.wait(0.0)
    assert delivery.error is first


def test_both_sides_seeing_the_last_report_is_harmless() -> None:
    # The request thread's expect() and the report thread's last report can both find the count
    # complete; the second release must neither raise nor leave a later wait blocked.
    delivery = _Delivery()
    delivery(None, None)
    delivery.expect(1)  # as if expect() had run between the report's count and its check
    delivery(None, None)  # a stray extra report: releases an already free lock
    assert delivery.wait(0.0)


def test_many_threads_racing_reports_and_expect_always_finish() -> None:
    for _ in range(500):
        delivery = _Delivery()
        reporter = threading.Thread(target=lambda d=delivery: [d(None, None) for _ in range(3)])
        reporter.start()
        delivery.expect(3)
        assert delivery.wait(5.0)
        reporter.join()
        assert delivery.delivered == 3


MESSAGE = OutgoingMessage(b"session", b'{"type":"tool_call"}', [("event_id", b"e-1")])


class _Producer:
    """librdkafka's produce and poll as the publisher uses them: produce queues a delivery report,
    poll serves the queued ones (in the thread that calls it, as librdkafka does)."""

    def __init__(self, *, full_times: int = 0, refuse: bool = False, error: KafkaError | None = None) -> None:
        self.reports: list[Callable[[KafkaError | None, object], None]] = []
        self.produced: list[dict[str, Any]] = []
        self.full_times = full_times
        self.refuse = refuse
        self.error = error

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.refuse:
            raise KafkaException(KafkaError(KafkaError.INVALID_REQUEST))
        if self.full_times:
            self.full_times -= 1
            raise BufferError("Local: Queue full")
        self.produced.append({"topic": topic, **kwargs})
        self.reports.append(kwargs["on_delivery"])

    def poll(self, _timeout: float) -> int:
        served, self.reports = self.reports, []
        for report in served:
            report(self.error, None)
        return len(served)


def _publisher(producer: _Producer, timeout_s: float = 5.0) -> KafkaPublisher:
    # No report thread: the test serves the reports (`_report_thread`) or leaves them unserved.
    return KafkaPublisher(topic="mcp.events", timeout_s=timeout_s, producer=producer)  # type: ignore[arg-type]


def _report_thread(publisher: KafkaPublisher, producer: _Producer, stop: threading.Event) -> threading.Thread:
    """The publisher's report thread: poll, then wake the loops of the requests it finished."""

    def serve() -> None:
        while not stop.is_set():
            publisher.serve_reports(0.0)
            stop.wait(0.005)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_reports_that_arrive_before_expect_resolve_the_future_at_once() -> None:
    async def main() -> None:
        finished = _Finished()
        delivery = _AsyncDelivery(asyncio.get_running_loop().create_future(), finished)
        delivery(None, None)
        delivery(None, None)
        delivery.expect(2)
        assert delivery.future.done()
        assert finished.requests == []  # resolved by expect, so the report thread has nothing to wake

    asyncio.run(main())


def test_the_last_report_after_expect_resolves_the_future_from_the_report_thread() -> None:
    async def main() -> None:
        finished = _Finished()
        delivery = _AsyncDelivery(asyncio.get_running_loop().create_future(), finished)
        delivery(None, None)
        delivery.expect(2)
        assert not delivery.future.done()
        reporter = threading.Thread(target=lambda: (delivery(None, None), finished.wake_loops()))
        reporter.start()
        await asyncio.wait_for(delivery.future, 5.0)
        reporter.join()
        assert delivery.delivered == 2

    asyncio.run(main())


def test_one_wake_up_resolves_every_request_a_poll_finished() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished = _Finished()
        deliveries = [_AsyncDelivery(loop.create_future(), finished) for _ in range(5)]
        for delivery in deliveries:
            delivery.expect(1)
        wake_ups: list[int] = []
        real = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any) -> Any:
            wake_ups.append(len(args[0]))
            return real(callback, *args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

        def poll() -> None:
            for delivery in deliveries:
                delivery(None, None)
            finished.wake_loops()

        reporter = threading.Thread(target=poll)
        reporter.start()
        await asyncio.wait_for(asyncio.gather(*(d.future for d in deliveries)), 5.0)
        reporter.join()
        assert wake_ups == [5]

    asyncio.run(main())


def test_both_sides_seeing_the_last_report_resolve_it_once() -> None:
    async def main() -> None:
        finished = _Finished()
        delivery = _AsyncDelivery(asyncio.get_running_loop().create_future(), finished)
        delivery.expected = 1  # as if expect() ran between the report's count and its check
        delivery(None, None)
        delivery.expect(1)  # the loop sees it complete too, and resolves it first
        finished.wake_loops()
        await asyncio.sleep(0)  # the report thread's resolution runs: it must not raise
        delivery(None, None)  # a stray extra report queues nothing
        assert finished.requests == []
        assert delivery.future.result() is None

    asyncio.run(main())


def test_a_closed_loop_does_not_stop_the_report_thread() -> None:
    loop = asyncio.new_event_loop()
    finished = _Finished()
    delivery = _AsyncDelivery(loop.create_future(), finished)
    delivery.expect(1)
    loop.close()
    delivery(None, None)
    finished.wake_loops()  # nobody waits any more; the reports of other loops go on
    assert finished.requests == []


def test_publish_async_produces_every_message_and_awaits_their_reports() -> None:
    producer = _Producer()
    publisher = _publisher(producer)
    stop = threading.Event()
    thread = _report_thread(publisher, producer, stop)

    async def main() -> None:
        await asyncio.gather(*(publisher.publish_async([MESSAGE, MESSAGE]) for _ in range(20)))

    try:
        asyncio.run(main())
    finally:
        stop.set()
        thread.join()
    assert len(producer.produced) == 40
    assert producer.produced[0] == {
        "topic": "mcp.events",
        "value": MESSAGE.value,
        "key": MESSAGE.key,
        "headers": MESSAGE.headers,
        "on_delivery": producer.produced[0]["on_delivery"],
    }


@pytest.mark.parametrize("count", [2, 600])
def test_a_large_batch_is_produced_on_a_thread_and_a_small_one_on_the_loop(count: int) -> None:
    producer = _Producer()
    produced_on: set[str] = set()
    produce = producer.produce

    def recorded(topic: str, **kwargs: Any) -> None:
        produced_on.add(threading.current_thread().name)
        produce(topic, **kwargs)

    producer.produce = recorded  # type: ignore[method-assign]
    publisher = _publisher(producer)
    stop = threading.Event()
    thread = _report_thread(publisher, producer, stop)
    try:
        asyncio.run(publisher.publish_async([MESSAGE] * count))
    finally:
        stop.set()
        thread.join()
    assert len(producer.produced) == count
    on_loop = threading.main_thread().name
    assert (produced_on == {on_loop}) is (count == 2), produced_on


def test_a_full_local_queue_is_retried_within_the_deadline() -> None:
    producer = _Producer(full_times=3)
    publisher = _publisher(producer)
    stop = threading.Event()
    thread = _report_thread(publisher, producer, stop)
    try:
        asyncio.run(publisher.publish_async([MESSAGE]))
    finally:
        stop.set()
        thread.join()
    assert len(producer.produced) == 1


def test_a_queue_full_past_the_deadline_is_unavailable() -> None:
    publisher = _publisher(_Producer(full_times=10_000), timeout_s=0.05)
    with pytest.raises(PublishUnavailable, match="queue is full"):
        asyncio.run(publisher.publish_async([MESSAGE]))


def test_a_refused_message_is_unavailable() -> None:
    publisher = _publisher(_Producer(refuse=True))
    with pytest.raises(PublishUnavailable, match="Kafka refused the message"):
        asyncio.run(publisher.publish_async([MESSAGE]))


def test_a_failed_report_is_unavailable() -> None:
    producer = _Producer(error=KafkaError(KafkaError.REQUEST_TIMED_OUT))
    publisher = _publisher(producer)
    stop = threading.Event()
    thread = _report_thread(publisher, producer, stop)
    try:
        with pytest.raises(PublishUnavailable, match="did not acknowledge the events"):
            asyncio.run(publisher.publish_async([MESSAGE, MESSAGE]))
    finally:
        stop.set()
        thread.join()


def test_reports_that_never_come_time_out() -> None:
    publisher = _publisher(_Producer(), timeout_s=0.0)  # nobody polls: no report ever arrives
    with pytest.raises(PublishUnavailable, match="did not acknowledge 2 event"):
        # message.timeout.ms plus a second: the wait gives up after ~1 s.
        asyncio.run(publisher.publish_async([MESSAGE, MESSAGE]))

"""ingest_app.publisher: a request's wait for its own delivery reports (`_Delivery`).

The report thread counts reports; the request says how many to expect once it has produced them.
Either may see the last report first, and the wait must end exactly once, then. Publishing through
Kafka itself is tests/integration/test_ingest_kafka.py's.
"""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError

from ingest_app.publisher import _Delivery


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

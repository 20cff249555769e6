"""Backoff delays and Retry-After."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from mcp_proxy.backoff import RETRY_AFTER_CAP_S, Backoff, parse_retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), (" 0 ", 0.0), ("120", 120.0), (None, None), ("", None), ("soon", None), ("-3", None), ("1.5", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_delays_double_up_to_the_ceiling_each_in_its_upper_half() -> None:
    low = Backoff(0.2, 5.0, rng=lambda: 0.0)
    assert [round(low.next_delay(), 3) for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.5, 2.5]
    high = Backoff(0.2, 5.0, rng=lambda: 1.0)
    assert [round(high.next_delay(), 3) for _ in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_a_success_starts_the_delays_again() -> None:
    backoff = Backoff(0.2, 5.0, rng=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.2


def test_retry_after_is_a_floor_and_is_capped() -> None:
    backoff = Backoff(0.2, 5.0, rng=lambda: 1.0)
    assert backoff.next_delay(retry_after_s=3.0) == 3.0
    assert backoff.next_delay(retry_after_s=0.0) == 0.4  # the backoff's own delay when larger
    assert backoff.next_delay(retry_after_s=86_400.0) == RETRY_AFTER_CAP_S

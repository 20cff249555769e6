"""The bench's gate before exact counts: ClickHouse's insert counter, read from `before` on."""

from __future__ import annotations

import time

from bench.observe import wait_inserted


class CountingClient:
    """Answers the InsertedRows query with each value of `values` in turn, then the last."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)
        self.queries = 0

    def execute(self, query: str) -> list[tuple[int]]:
        assert "InsertedRows" in query
        self.queries += 1
        return [(self.values.pop(0) if len(self.values) > 1 else self.values[0],)]


def test_waits_until_the_rows_since_before_reach_the_expected_count() -> None:
    client = CountingClient(1_000, 1_400, 1_900, 2_000, 2_500)
    assert wait_inserted(client, 1_000, 1_000, timeout_s=5.0, interval_s=0.001) == 1_000  # type: ignore[arg-type]
    assert client.queries == 4


def test_gives_up_at_the_timeout_with_what_it_saw() -> None:
    client = CountingClient(1_000, 1_200)
    started = time.monotonic()
    assert wait_inserted(client, 1_000, 1_000, timeout_s=0.05, interval_s=0.01) == 200  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0

"""bench.speed: the probe times a fixed amount of work, so its figure moves only with the machine."""

from __future__ import annotations

from bench import speed


def test_the_probe_does_the_same_work_every_time() -> None:
    assert speed.work(10) == sum(i * i % 7 for i in range(10))


def test_the_probe_reports_positive_milliseconds() -> None:
    probe = speed.probe_ms(repeats=1)
    assert isinstance(probe, float)
    assert probe > 0

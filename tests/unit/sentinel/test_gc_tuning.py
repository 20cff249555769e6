"""sentinel.gc_tuning: what a long-running process sets once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sentinel import gc_tuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_freezes_what_exists_and_collects_less_often() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    gc_tuning.tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()  # cycles are still collected, less often
    assert gc.get_threshold() == (
        gc_tuning.YOUNG_THRESHOLD,
        gc_tuning.MIDDLE_THRESHOLD,
        gc_tuning.OLD_THRESHOLD,
    )

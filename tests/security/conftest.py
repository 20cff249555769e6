"""Hostile-input fixtures: the e2e pipeline (real ingest, Kafka, bridge, worker, ClickHouse) and the
report this suite publishes in docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import pipeline  # noqa: F401 - the session fixture, reused as is
from tests.security.helpers import ROWS, write_report


@pytest.fixture(scope="session", autouse=True)
def hostile_input_report() -> Iterator[None]:
    """After the session, rewrite the '## Hostile input' section of docs/reliability.md from this run."""
    yield
    write_report(ROWS)

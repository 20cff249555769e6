"""End-to-end fixtures: the real services plus ingest, bridge and a Celery worker as separate processes."""

from __future__ import annotations

import pytest

from sentinel_local import processes, stack
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import migrate

PIPELINE = ("worker", "bridge", "ingest")


@pytest.fixture(scope="session")
def pipeline() -> None:
    """(Re)start the pipeline processes from this checkout's code and wait until each is ready."""
    try:
        stack.up(echo=False)
        migrate(new_client())  # as `sentinel up` does: tests read the table before any insert
        for name in PIPELINE:
            process = processes.get(name)
            process.down()
            process.up()
    except stack.ServiceError as exc:
        pytest.fail(f"{exc}\n\nStart everything with `.venv/bin/sentinel up` (or `make test`).", pytrace=False)

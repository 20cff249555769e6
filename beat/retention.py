"""Beat's retention job: drop the monthly partitions of audit rows older than SENTINEL_RETENTION_DAYS."""

from __future__ import annotations

import logging

from workers.clickhouse.client import get_client
from workers.clickhouse.migrations import ensure_schema
from workers.clickhouse.retention import drop_expired

log = logging.getLogger(__name__)


def run_retention() -> dict[str, list[str]]:
    client = get_client()
    ensure_schema(client)
    dropped = drop_expired(client)
    if dropped:
        log.info("retention dropped partitions %s", dropped)
    return dropped

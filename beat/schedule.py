"""The beat schedule, as named data. UTC (set on the Celery app). Beat runs as exactly one process."""

from __future__ import annotations

from typing import Any

from sentinel import settings
from workers.celery_app import JOBS_QUEUE

CANARY_TASK = "sentinel.canary"
LAG_TASK = "sentinel.consumer_lag"

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "pipeline-canary": {
        "task": CANARY_TASK,
        "schedule": settings.CANARY_INTERVAL_S,
        # A canary older than its interval is stale: the next one is already due.
        "options": {"queue": JOBS_QUEUE, "expires": settings.CANARY_INTERVAL_S},
    },
    "bridge-consumer-lag": {
        "task": LAG_TASK,
        "schedule": settings.LAG_INTERVAL_S,
        "options": {"queue": JOBS_QUEUE, "expires": settings.LAG_INTERVAL_S},
    },
}

"""The periodic tasks beat schedules; thin wrappers over beat.canary and beat.lag. The worker imports
this module from its command line (`celery -A workers.celery_app worker --include beat.tasks`)."""

from __future__ import annotations

from typing import Any

from beat.canary import run_canary
from beat.lag import consumer_lag
from beat.schedule import CANARY_TASK, LAG_TASK
from workers.celery_app import app


@app.task(name=CANARY_TASK, ignore_result=False)
def canary_task() -> dict[str, Any]:
    result = run_canary()
    return {
        "event_id": result.event_id,
        "trace_id": result.trace_id,
        "seconds": result.seconds,
        "success": result.success,
        "error": result.error,
    }


@app.task(name=LAG_TASK)
def consumer_lag_task() -> dict[str, int]:
    return {str(p): lag for p, lag in consumer_lag().items()}

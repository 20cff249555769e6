"""`celery -A beat.app beat`: the one Celery app (`workers.celery_app`) with beat's schedule.

The schedule is named data in the app's configuration (`beat_schedule`), as Celery's periodic-task
docs set it; only the beat process loads this module, so the workers' app knows nothing of beat.
"""

from __future__ import annotations

from beat.schedule import BEAT_SCHEDULE
from workers.celery_app import app

app.conf.beat_schedule = BEAT_SCHEDULE

__all__ = ["app"]

"""The beat schedule, as named data. UTC (set on the Celery app)."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {}

"""A warning logged at most once per interval per key, with how many were held back meanwhile:
an outage or a full spool repeats the same warning thousands of times a second."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class RateLimitedLog:
    def __init__(
        self, logger: logging.Logger, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger, self._interval_s, self._clock = logger, interval_s, clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log `message % args` unless `key` was logged less than the interval ago; True if logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        suffix = f" ({held} more like this since the last)" if held else ""
        self._logger.warning(message + suffix, *args)
        return True

"""How long the emitter waits before posting again: exponential backoff with jitter, and never
sooner than the server's Retry-After."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

# A Retry-After beyond this is taken as this: a misconfigured or hostile server must not stop
# delivery for hours, and the spool holds the events meanwhile either way.
RETRY_AFTER_CAP_S = 60.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3).
    None when absent or unreadable; a date in the past is 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; a zone-less one is read as such
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Backoff:
    """Delays for consecutive failures: min_s, 2 x min_s, ... up to max_s, each drawn in its upper
    half (equal jitter: proxies that lost ingest together do not come back in step, and no delay
    collapses to zero), and at least the server's Retry-After (capped at RETRY_AFTER_CAP_S)."""

    def __init__(self, min_s: float, max_s: float, rng: Callable[[], float] = random.random) -> None:
        self.min_s, self.max_s = min_s, max(min_s, max_s)
        self._rng = rng
        self.failures = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        ceiling = min(self.max_s, self.min_s * 2**self.failures)
        self.failures += 1
        delay = ceiling / 2 + self._rng() * ceiling / 2
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
        return delay

    def reset(self) -> None:
        self.failures = 0

"""Garbage-collector settings for the long-running processes (bridge, worker children, ingest).

CPython runs a young-generation collection every 700 net allocations, and now and then an older one
that walks every tracked object: the modules and the SDK loaded at start, and in the bridge the
events of its chunks in flight (up to MAX_INFLIGHT_CHUNKS per consumer). Our objects are freed by
reference counting; the collections found little to free and cost the bridge about a tenth of its
CPU (11.1 -> 10.0 us per message in an in-process run with collection off). So, once a process has
started, what it loaded is frozen out of every collection, and a young collection waits for 50,000
allocations. Cycles are still collected, later: memory held by garbage cycles grows by at most what
50,000 allocations leave behind.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 1_000


def tune_gc() -> None:
    """Call once start-up is done (imports, clients, app): freeze what exists, collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)

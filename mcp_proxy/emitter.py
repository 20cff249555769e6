"""Placeholder audit emitter: the interface the relay codes against, and nothing more.

The real emitter (bounded queue, batches closed by count and time, retries honouring Retry-After,
a durable spool) replaces this module; only the interface below is shared. This one posts each
batch synchronously from one background thread and, when a post fails, appends the batch to a
file under the spool folder.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from sentinel import settings

log = logging.getLogger(__name__)
# A connection error or a 503 is tried again, once a second, this many times before the spool.
_ATTEMPTS = 30


@dataclass(frozen=True)
class EmitterConfig:
    ingest_url: str
    token: str | None
    spool_dir: Path
    spool_max_bytes: int
    batch_max_events: int = 500
    batch_max_s: float = 0.1
    queue_max: int = 10_000

    @classmethod
    def from_settings(cls, *, spool_dir: Path | None = None) -> EmitterConfig:
        return cls(
            ingest_url=settings.INGEST_URL,
            token=settings.PROXY_INGEST_TOKEN or None,
            spool_dir=spool_dir or settings.PROXY_DATA_DIR,
            spool_max_bytes=settings.PROXY_SPOOL_MAX_BYTES,
        )


class Emitter:
    def __init__(self, config: EmitterConfig) -> None:
        self.config = config
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(config.queue_max)
        self._thread = threading.Thread(target=self._run, name="audit-emitter", daemon=True)
        self._closing = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, event: dict[str, Any]) -> None:
        """Never blocks, never raises: a full queue drops the event (the real emitter spools it)."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning("audit queue full: event %s dropped", event.get("event_id"))

    def close(self, timeout_s: float = 5.0) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._closing.set()
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [] if first is None else [first]
            while first is not None and len(batch) < self.config.batch_max_events:
                try:
                    item = self._queue.get(timeout=self.config.batch_max_s)
                except queue.Empty:
                    break
                if item is None:
                    first = None
                    break
                batch.append(item)
            if batch:
                self._post(batch)
            if first is None:
                return

    def _post(self, batch: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        for attempt in range(_ATTEMPTS):
            try:
                response = requests.post(
                    f"{self.config.ingest_url.rstrip('/')}/events", json=batch, headers=headers, timeout=10
                )
                if response.status_code == 202:
                    return
                log.warning("ingest answered %s to %d audit events", response.status_code, len(batch))
                if response.status_code != 503:
                    break
            except requests.RequestException as exc:
                log.warning("audit events not posted (attempt %d): %s", attempt + 1, exc)
            if self._closing.wait(1.0):
                break  # closing: what cannot be posted now goes to the spool
        self.config.spool_dir.mkdir(parents=True, exist_ok=True)
        with (self.config.spool_dir / "spool.ndjson").open("a", encoding="utf-8") as spool:
            spool.writelines(json.dumps(event) + "\n" for event in batch)

"""Logs as JSON lines, each carrying the current trace_id and span_id, so a log line leads to its trace."""

from __future__ import annotations

import logging
import os
import sys
import time

import orjson
from opentelemetry import trace


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = f"{context.trace_id:032x}"
            entry["span_id"] = f"{context.span_id:016x}"
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(service: str, level: str | None = None) -> None:
    """Route the root logger to stderr as JSON lines; `SENTINEL_LOG_LEVEL` sets the level."""
    # The real stderr: Celery replaces sys.stderr in workers with a proxy that logs back into us.
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("SENTINEL_LOG_LEVEL", "INFO"))
    # librdkafka and kombu are chatty at INFO during reconnects; their warnings still show.
    for noisy in ("kombu", "amqp", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""The canary: a synthetic audit event posted through ingest like any other, then looked for in
ClickHouse. Its seconds and success become metrics and a row in `sentinel.pipeline_canary`; its
trace (beat -> worker -> POST /events -> Kafka -> bridge -> linked insert) is a ready example of a
complete trace.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from sentinel import metrics, settings
from sentinel.telemetry import tracer
from workers.clickhouse.client import get_client
from workers.clickhouse.queries import find_event
from workers.clickhouse.schema import QUALIFIED_CANARY_TABLE, ensure_schema

log = logging.getLogger(__name__)

CANARY_EVENT_TYPE = "sentinel.canary"
SPAN_CANARY = "sentinel.canary"


@dataclass(frozen=True)
class CanaryResult:
    event_id: str
    trace_id: str
    seconds: float
    success: bool
    error: str


def canary_event(event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": CANARY_EVENT_TYPE,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "server": "sentinel-canary",
        "session_id": "sentinel-canary",
        "attributes": {"synthetic": True},
    }


def run_canary(*, timeout_s: float = settings.CANARY_TIMEOUT_S, ingest_url: str = settings.INGEST_URL) -> CanaryResult:
    """Post one canary event and wait (bounded) for its row; record the outcome. Never raises."""
    event_id = str(uuid.uuid4())
    sent_at = time.time()
    started = time.monotonic()
    error = ""
    client = get_client()
    with tracer().start_as_current_span(SPAN_CANARY, kind=SpanKind.CLIENT) as span:
        context = span.get_span_context()
        trace_id = f"{context.trace_id:032x}"
        headers = {"Content-Type": "application/json"}
        tokens = settings.parse_tokens(settings.INGEST_TOKENS)
        if tokens:  # the canary goes through the front door like any client
            headers["Authorization"] = f"Bearer {tokens[0].decode()}"
        propagate.inject(headers)
        try:
            response = requests.post(
                f"{ingest_url}/events", json=canary_event(event_id), headers=headers, timeout=timeout_s
            )
            if response.status_code != 202:
                error = f"ingest answered {response.status_code}: {response.text[:200]}"
            else:
                while find_event(client, event_id) is None:
                    if time.monotonic() - started > timeout_s:
                        error = f"not in ClickHouse after {timeout_s:.0f}s"
                        break
                    time.sleep(0.1)
        except Exception as exc:  # noqa: BLE001 - the canary reports failures, it does not raise them
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
    result = CanaryResult(event_id, trace_id, seconds, not error, error)
    _record(result, sent_at)
    return result


def _record(result: CanaryResult, sent_at: float) -> None:
    metrics.CANARY_SUCCESS.set(1 if result.success else 0)
    metrics.CANARY_RUNS.labels("arrived" if result.success else "failed").inc()
    if result.success:
        metrics.CANARY_SECONDS.set(result.seconds)
    else:
        log.error("canary %s failed: %s", result.event_id, result.error)
    try:
        client = get_client()
        ensure_schema(client)
        client.execute(
            f"INSERT INTO {QUALIFIED_CANARY_TABLE} (event_id, trace_id, sent_at, seconds, success, error) VALUES",
            [
                (
                    uuid.UUID(result.event_id),
                    result.trace_id,
                    int(sent_at),
                    result.seconds,
                    int(result.success),
                    result.error,
                )
            ],
        )
    except Exception as exc:  # noqa: BLE001 - ClickHouse away: the metrics still tell
        log.warning("could not record the canary run: %s", exc)

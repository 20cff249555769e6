"""One POST /events of a batch to ingest, and what ingest's answer means for that batch.

The POST has a CLIENT span of its own, the root of a trace per batch: a batch holds events of many
MCP calls, and each event carries its own call's trace, so no call's trace should hold the post.
The span's context travels in the request's traceparent, so ingest's server span is its child.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
import requests
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.trace import SpanKind, Status, StatusCode

from mcp_proxy.backoff import parse_retry_after
from sentinel import semconv, telemetry

NDJSON = "application/x-ndjson"

# The reasons ingest gives in its refusals (ingest_app/accept.py, the nginx config), kept as the
# dropped metric's label; any other refusal is labelled by its status, so labels stay few.
INGEST_REASONS = frozenset(
    {
        "unauthorized",
        "invalid_json",
        "no_events",
        "invalid_event",
        "event_too_large",
        "too_many_events",
        "body_too_large",
        "body_timeout",
    }
)


class Verdict(Enum):
    ACCEPTED = "accepted"
    RETRY = "retry"  # post the same events again later
    SPLIT = "split"  # too big for one request: post each half
    DROP_ONE = "drop_one"  # one event (`index`) can never be accepted; post the others
    DROP = "drop"  # none of these events can ever be accepted


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    reason: str  # ingest's reason, `http_<status>`, or what failed on the way
    status: int | None = None
    retry_after_s: float | None = None
    index: int | None = None
    detail: str = ""  # ingest's explanation, for the log


def classify(status: int, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Answer:
    """What ingest's answer means. 2xx: accepted. 408, 429 and 5xx: retry, after Retry-After.
    401 and 403: retry too: what ingest refuses is the proxy's token, not the events, and an audit
    trail must not lose calls to a credential being rotated or mistyped (they wait in the spool for
    a proxy with the right token). 413: split, unless one event is too large (drop it). Another
    4xx: drop, or drop the one event it names (`index`). Anything else (a redirect, say): retry, so
    a misrouted proxy keeps its events in the spool rather than losing them."""
    error = payload.get("error")
    reason = error if error in INGEST_REASONS else f"http_{status}"
    detail = str(payload.get("detail", ""))[:500]
    if 200 <= status < 300:
        return Answer(Verdict.ACCEPTED, "accepted", status)
    if status in (401, 403, 408, 429) or status >= 500:
        return Answer(Verdict.RETRY, reason, status, parse_retry_after(headers.get("Retry-After")))
    index = payload.get("index")
    named = index if isinstance(index, int) and not isinstance(index, bool) else None
    if status == 413 and named is None:
        return Answer(Verdict.SPLIT, reason, status, detail=detail)
    if 400 <= status < 500:
        verdict = Verdict.DROP_ONE if named is not None else Verdict.DROP
        return Answer(verdict, reason, status, index=named, detail=detail)
    return Answer(Verdict.RETRY, reason, status, parse_retry_after(headers.get("Retry-After")))


class IngestClient:
    """Posts batches over one pooled keep-alive connection. Not thread-safe: one poster thread."""

    def __init__(self, url: str, token: str | None, *, connect_timeout_s: float, timeout_s: float) -> None:
        self.url = f"{url.rstrip('/')}/events"
        self.connect_timeout_s, self.timeout_s = connect_timeout_s, timeout_s
        self._session = requests.Session()
        # One connection is all a single poster uses; urllib3's own retries would hide failures
        # from the backoff and the metrics.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._headers = {"Content-Type": NDJSON}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def post(self, lines: Sequence[bytes], *, timeout_s: float | None = None) -> Answer:
        """POST `lines` (encoded events) as NDJSON. Never raises for what the network or ingest
        does: a connection error or timeout is a RETRY answer."""
        body = b"\n".join(lines)
        timeout = self.timeout_s if timeout_s is None else max(0.01, min(timeout_s, self.timeout_s))
        headers = dict(self._headers)
        # A root span: the context current on this thread, if any, is no MCP call's.
        with telemetry.tracer().start_as_current_span(
            "POST",
            context=otel_context.Context(),
            kind=SpanKind.CLIENT,
            attributes={semconv.HTTP_METHOD: "POST", semconv.HTTP_URL: self.url, semconv.BATCH_EVENTS: len(lines)},
        ) as span:
            propagate.inject(headers)
            try:
                # This span is the request's; an instrumented requests would record a second one.
                with suppress_http_instrumentation():
                    response = self._session.post(
                        self.url,
                        data=body,
                        headers=headers,
                        timeout=(min(self.connect_timeout_s, timeout), timeout),
                        allow_redirects=False,
                    )
            except requests.Timeout:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                return Answer(Verdict.RETRY, "timeout")
            except requests.RequestException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return Answer(Verdict.RETRY, "connection_error")
            span.set_attribute(semconv.HTTP_STATUS_CODE, response.status_code)
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {response.status_code}"))
            return classify(response.status_code, _json_object(response.content), response.headers)

    def close(self) -> None:
        self._session.close()


def _json_object(content: bytes) -> Mapping[str, Any]:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}

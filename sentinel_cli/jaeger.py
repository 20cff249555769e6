"""A small client for Jaeger's query API (`/api/traces`), used by `sentinel trace` and the tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

from sentinel import settings


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    name: str
    service: str
    start_us: int
    duration_us: int
    parent_id: str | None
    links: tuple[tuple[str, str], ...]  # (trace_id, span_id) of FOLLOWS_FROM references
    tags: dict[str, Any] = field(default_factory=dict)


def _normalise(trace_id: str) -> str:
    return trace_id.lower().rjust(32, "0")


def parse_trace(data: dict[str, Any]) -> list[Span]:
    processes = {pid: p.get("serviceName", "?") for pid, p in data.get("processes", {}).items()}
    spans = []
    for raw in data.get("spans", []):
        parent = None
        links = []
        for ref in raw.get("references") or []:
            if ref.get("refType") == "CHILD_OF" and _normalise(ref["traceID"]) == _normalise(raw["traceID"]):
                parent = ref["spanID"].rjust(16, "0")
            else:
                links.append((_normalise(ref["traceID"]), ref["spanID"].rjust(16, "0")))
        spans.append(
            Span(
                trace_id=_normalise(raw["traceID"]),
                span_id=raw["spanID"].rjust(16, "0"),
                name=raw["operationName"],
                service=processes.get(raw.get("processID"), "?"),
                start_us=int(raw["startTime"]),
                duration_us=int(raw["duration"]),
                parent_id=parent,
                links=tuple(links),
                tags={t["key"]: t.get("value") for t in raw.get("tags") or []},
            )
        )
    return spans


class JaegerClient:
    def __init__(self, base_url: str = settings.JAEGER_QUERY_URL) -> None:
        self.base_url = base_url.rstrip("/")

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of one trace ([] if Jaeger does not have it yet)."""
        response = requests.get(f"{self.base_url}/api/traces/{trace_id}", timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        data = response.json().get("data") or []
        return parse_trace(data[0]) if data else []

    def find(
        self, service: str, operation: str, tags: dict[str, str] | None = None, lookback: str = "1h", limit: int = 50
    ) -> list[list[Span]]:
        import json

        params = {"service": service, "operation": operation, "lookback": lookback, "limit": str(limit)}
        if tags:
            params["tags"] = json.dumps(tags)
        response = requests.get(f"{self.base_url}/api/traces", params=params, timeout=10)
        response.raise_for_status()
        return [parse_trace(t) for t in response.json().get("data") or []]

    def wait_for(self, trace_id: str, names: set[str], timeout_s: float = 30.0) -> list[Span]:
        """Poll until the trace holds spans with all `names` (exporters batch); returns what it has."""
        deadline = time.monotonic() + timeout_s
        spans: list[Span] = []
        while time.monotonic() < deadline:
            try:
                spans = self.trace(trace_id)
            except requests.RequestException:
                spans = []
            if names <= {s.name for s in spans}:
                return spans
            time.sleep(0.5)
        return spans

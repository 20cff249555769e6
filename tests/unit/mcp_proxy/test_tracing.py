"""Where a relayed request's trace continues from."""

from __future__ import annotations

from opentelemetry import trace

from mcp_proxy import tracing

META = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
HEADER = "00-11111111111111111111111111111111-2222222222222222-01"


def _span_id(context: object) -> str:
    return f"{trace.get_current_span(context).get_span_context().span_id:016x}"  # type: ignore[arg-type]


def test_meta_wins_over_http_headers() -> None:
    assert _span_id(tracing.parent_context({"traceparent": META}, {"traceparent": HEADER})) == "b7ad6b7169203331"


def test_http_headers_when_meta_has_none() -> None:
    assert _span_id(tracing.parent_context({"progressToken": 1}, {"traceparent": HEADER})) == "2222222222222222"


def test_garbage_starts_a_new_trace() -> None:
    assert tracing.parent_context({"traceparent": "nonsense"}, None) is tracing.ROOT
    assert tracing.parent_context(None, None) is tracing.ROOT

"""Finished spans as an OTLP `ExportTraceServiceRequest`, written straight to protobuf bytes.

The OTLP exporter's own encoder builds a protobuf object for every span, attribute, value and
link, then serialises the tree: ~40 us per span in Python, more than creating the span, and
paid in every traced process (ingest's two spans per request, the bridge's consume spans, the
worker's links). This writes the same wire format directly, and keeps the bytes of attributes
that repeat (`messaging.system=kafka`, the resource, the scope). The output parses to a message
equal to the exporter's own (tests/unit/test_otlp_encoding.py compares them on varied spans).

Field numbers are those of opentelemetry-proto's trace.proto and common.proto. The OTLP/gRPC
exporter keeps its own encoder (it sends protobuf objects, not bytes).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import SpanKind

log = logging.getLogger(__name__)

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# SpanFlags: the context's is_remote is known (0x100), and it is true (0x200).
_FLAGS_KNOWN, _FLAGS_REMOTE = struct.pack("<I", 0x100), struct.pack("<I", 0x300)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CACHE_LIMIT = 4096
_key_values: dict[tuple[int, str, type, Any], bytes] = {}
_resources: dict[int, tuple[object, bytes]] = {}
_scopes: dict[tuple[str, str | None, str | None] | None, bytes] = {}


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The request body for `spans`: ResourceSpans per resource, ScopeSpans per scope, in the
    order of first appearance (as the exporter's encoder groups them)."""
    grouped: dict[int, tuple[bytes, dict[Any, tuple[bytes, list[bytes]]]]] = {}
    for span in spans:
        resource = span.resource
        by_scope = grouped.get(id(resource))
        if by_scope is None:
            by_scope = grouped[id(resource)] = (_resource_bytes(resource), {})
        scope = span.instrumentation_scope
        # By value, as the exporter's encoder groups them: tracers of one name share a scope.
        scope_key = (scope.name, scope.version, scope.schema_url) if scope else None
        entry = by_scope[1].get(scope_key)
        if entry is None:
            entry = by_scope[1][scope_key] = (_scope_bytes(scope_key, scope), [])
        entry[1].append(_len(0x12, _span(span)))  # ScopeSpans.spans = 2
    out = []
    for resource_field, scopes in grouped.values():
        body = [resource_field]
        for scope_field, encoded_spans in scopes.values():
            body.append(_len(0x12, b"".join([scope_field, *encoded_spans])))  # ResourceSpans.scope_spans = 2
        out.append(_len(0x0A, b"".join(body)))  # ExportTraceServiceRequest.resource_spans = 1
    return b"".join(out)


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),  # trace_id = 1
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),  # span_id = 2
    ]
    state = context.trace_state
    if state:
        parts.append(_str(0x1A, ",".join(f"{k}={v}" for k, v in state.items())))  # trace_state = 3
    parent = span.parent
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))  # parent_span_id = 4
    parts.append(_str(0x2A, span.name))  # name = 5
    parts.append(b"\x30" + _varint(_KIND[span.kind]))  # kind = 6
    if span.start_time:
        parts.append(b"\x39" + struct.pack("<Q", span.start_time))  # start_time_unix_nano = 7
    if span.end_time:
        parts.append(b"\x41" + struct.pack("<Q", span.end_time))  # end_time_unix_nano = 8
    if span.attributes:
        parts.append(_attributes(0x4A, span.attributes))  # attributes = 9
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))  # dropped_attributes_count = 10
    for event in span.events:  # events = 11
        event_parts = [b"\x09" + struct.pack("<Q", event.timestamp)] if event.timestamp else []
        if event.name:
            event_parts.append(_str(0x12, event.name))
        if event.attributes:
            event_parts.append(_attributes(0x1A, event.attributes))
        if event.dropped_attributes:
            event_parts.append(b"\x20" + _varint(event.dropped_attributes))
        parts.append(_len(0x5A, b"".join(event_parts)))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))  # dropped_events_count = 12
    for link in span.links:  # links = 13 (the exporter writes no trace_state on links)
        link_context = link.context
        link_parts = [
            b"\x0a\x10" + link_context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + link_context.span_id.to_bytes(8, "big"),
        ]
        if link.attributes:
            link_parts.append(_attributes(0x22, link.attributes))
        if link.dropped_attributes:
            link_parts.append(b"\x28" + _varint(link.dropped_attributes))
        link_parts.append(b"\x35" + (_FLAGS_REMOTE if link_context.is_remote else _FLAGS_KNOWN))  # flags = 6
        parts.append(_len(0x6A, b"".join(link_parts)))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))  # dropped_links_count = 14
    status = span.status
    status_parts = []
    if status.description:
        status_parts.append(_str(0x12, status.description))  # Status.message = 2
    if status.status_code.value:
        status_parts.append(b"\x18" + _varint(status.status_code.value))  # Status.code = 3
    parts.append(_len(0x7A, b"".join(status_parts)))  # status = 15
    parts.append(b"\x85\x01" + (_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_KNOWN))  # 16
    return b"".join(parts)


def _attributes(tag: int, attributes: Mapping[str, Any]) -> bytes:
    """Each attribute as a repeated KeyValue field `tag`; scalar ones are remembered."""
    out = []
    for key, value in attributes.items():
        kind = type(value)
        try:
            if kind is str or kind is int or kind is bool or kind is float:
                cache_key = (tag, key, kind, value)
                field = _key_values.get(cache_key)
                if field is None:
                    if len(_key_values) >= _CACHE_LIMIT:
                        _key_values.clear()
                    field = _key_values[cache_key] = _len(tag, _key_value(key, value))
            else:
                field = _len(tag, _key_value(key, value))
        except (TypeError, ValueError) as exc:
            # As the exporter's encoder does: the attribute is left out, the span is kept.
            log.warning("attribute %s not exported: %s", key, exc)
            continue
        out.append(field)
    return b"".join(out)


def _key_value(key: str, value: Any) -> bytes:
    return _str(0x0A, key) + _len(0x12, _any_value(value))  # KeyValue: key = 1, value = 2


def _any_value(value: Any) -> bytes:
    """AnyValue: a oneof, so even an empty or zero value is written."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _len(0x0A, value.encode("utf-8"))
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{value} is outside int64")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _len(0x3A, value)
    if isinstance(value, Sequence):  # ArrayValue.values = 1
        return _len(0x2A, b"".join(_len(0x0A, _any_value(v)) for v in value))
    if isinstance(value, Mapping):  # KeyValueList.values = 1
        return _len(0x32, b"".join(_len(0x0A, _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"cannot encode an attribute value of type {type(value).__name__}")


def _resource_bytes(resource: Any) -> bytes:
    cached = _resources.get(id(resource))
    if cached is None or cached[0] is not resource:
        body = _attributes(0x0A, resource.attributes) if resource.attributes else b""
        fields = _len(0x0A, body)  # ResourceSpans.resource = 1
        if resource.schema_url:
            fields += _str(0x1A, resource.schema_url)  # ResourceSpans.schema_url = 3
        cached = _resources[id(resource)] = (resource, fields)
    return cached[1]


def _scope_bytes(key: tuple[str, str | None, str | None] | None, scope: Any) -> bytes:
    cached = _scopes.get(key)
    if cached is None:
        body = b""
        schema_url = b""
        if scope is not None:
            if scope.name:
                body += _str(0x0A, scope.name)
            if scope.version:
                body += _str(0x12, scope.version)
            if scope.attributes:
                body += _attributes(0x1A, scope.attributes)
            if scope.schema_url:
                schema_url = _str(0x1A, scope.schema_url)  # ScopeSpans.schema_url = 3
        if len(_scopes) >= _CACHE_LIMIT:
            _scopes.clear()
        cached = _scopes[key] = _len(0x0A, body) + schema_url  # ScopeSpans.scope = 1
    return cached


def _str(tag: int, text: str) -> bytes:
    return _len(tag, text.encode("utf-8")) if text else b""


def _len(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class DirectEncodingSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter (endpoint, headers, compression, retries, metrics: all
    its own, from the same OTEL_* variables), with `encode_spans` above as its encoder.

    `export` is the exporter's own (opentelemetry-exporter-otlp-proto-http 1.45) with one line
    changed, the encoding; the version is pinned in requirements.txt.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            log.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                serialized = encode_spans(spans)
            except Exception as error:  # noqa: BLE001 - as the exporter: a batch never raises
                log.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if _is_request_too_large(serialized, self._max_request_size):
                log.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(serialized),
                    self._max_request_size,
                )
                result.error = RequestPayloadTooLargeError(
                    f"Serialized span request size {len(serialized)} bytes exceeds max_request_size "
                    f"{self._max_request_size} bytes."
                )
                return SpanExportResult.FAILURE
            export_result = self._client.export(serialized)
            if not export_result.success:
                result.error = export_result.error
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                    if export_result.status_code is not None
                    else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

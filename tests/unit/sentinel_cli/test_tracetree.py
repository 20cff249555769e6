"""sentinel_cli.jaeger.parse_trace and sentinel_cli.tracetree.render over Jaeger query API JSON."""

from __future__ import annotations

from typing import Any

from sentinel_cli.jaeger import Span, parse_trace
from sentinel_cli.tracetree import render

EVENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INSERT_TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "f" * 32


def _span(
    trace_id: str, span_id: str, name: str, start: int, duration: int, process: str, refs: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "traceID": trace_id,
        "spanID": span_id,
        "operationName": name,
        "references": refs,
        "startTime": start,
        "duration": duration,
        "processID": process,
        "tags": [{"key": "messaging.system", "type": "string", "value": "kafka"}],
    }


def _ref(kind: str, trace_id: str, span_id: str) -> dict[str, str]:
    return {"refType": kind, "traceID": trace_id, "spanID": span_id}


EVENT_TRACE_JSON: dict[str, Any] = {
    "traceID": EVENT_TRACE,
    "spans": [
        # Jaeger lists spans in no particular order; the consume span comes first on purpose.
        _span(EVENT_TRACE, "00000000000000c3", "kafka.consume", 1_000_400, 100, "p2",
              [_ref("CHILD_OF", EVENT_TRACE, "00000000000000b2")]),
        _span(EVENT_TRACE, "00000000000000a1", "POST /events", 1_000_000, 5_000, "p1", []),
        _span(EVENT_TRACE, "00000000000000b2", "send mcp.events", 1_000_200, 3_000, "p1",
              [_ref("CHILD_OF", EVENT_TRACE, "00000000000000a1")]),
    ],
    "processes": {"p1": {"serviceName": "sentinel-ingest"}, "p2": {"serviceName": "sentinel-bridge"}},
}  # fmt: skip

INSERT_TRACE_JSON: dict[str, Any] = {
    "traceID": INSERT_TRACE,
    "spans": [
        _span(INSERT_TRACE, "00000000000000d4", "clickhouse.insert_batch", 1_006_000, 2_500, "w",
              [_ref("FOLLOWS_FROM", EVENT_TRACE, "00000000000000c3"),
               _ref("FOLLOWS_FROM", OTHER_TRACE, "00000000000000e5")]),
    ],
    "processes": {"w": {"serviceName": "sentinel-worker"}},
}  # fmt: skip


def _by_name(spans: list[Span]) -> dict[str, Span]:
    return {s.name: s for s in spans}


def test_parse_trace_reads_ids_names_services_and_times() -> None:
    spans = _by_name(parse_trace(EVENT_TRACE_JSON))
    root = spans["POST /events"]
    assert root.trace_id == EVENT_TRACE
    assert root.span_id == "00000000000000a1"
    assert root.service == "sentinel-ingest"
    assert (root.start_us, root.duration_us) == (1_000_000, 5_000)
    assert root.parent_id is None
    assert root.links == ()
    assert root.tags == {"messaging.system": "kafka"}
    assert spans["kafka.consume"].service == "sentinel-bridge"


def test_parse_trace_child_of_is_the_parent() -> None:
    spans = _by_name(parse_trace(EVENT_TRACE_JSON))
    assert spans["send mcp.events"].parent_id == "00000000000000a1"
    assert spans["kafka.consume"].parent_id == "00000000000000b2"
    assert spans["kafka.consume"].links == ()


def test_parse_trace_follows_from_is_a_link() -> None:
    (insert,) = parse_trace(INSERT_TRACE_JSON)
    assert insert.parent_id is None
    assert insert.links == ((EVENT_TRACE, "00000000000000c3"), (OTHER_TRACE, "00000000000000e5"))


def test_parse_trace_child_of_another_trace_is_a_link_not_a_parent() -> None:
    data = {
        "spans": [_span(EVENT_TRACE, "01", "s", 0, 1, "p", [_ref("CHILD_OF", OTHER_TRACE, "02")])],
        "processes": {},
    }
    (span,) = parse_trace(data)
    assert span.parent_id is None
    assert span.links == ((OTHER_TRACE, "0000000000000002"),)
    assert span.service == "?"


def test_parse_trace_pads_short_ids() -> None:
    data = {
        "spans": [
            _span("ABC", "1", "child", 5, 1, "p", [_ref("CHILD_OF", "abc", "2")]),
            _span("abc", "2", "root", 0, 9, "p", []),
        ],
        "processes": {"p": {"serviceName": "svc"}},
    }
    spans = _by_name(parse_trace(data))
    assert spans["child"].trace_id == "0" * 29 + "abc"
    assert spans["child"].span_id == "0" * 15 + "1"
    assert spans["child"].parent_id == spans["root"].span_id


def test_render_nests_children_under_their_parents() -> None:
    lines = render(parse_trace(EVENT_TRACE_JSON)).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("└─ POST /events  [sentinel-ingest]  5.00 ms  (+0.0 ms)")
    assert lines[1].startswith("   └─ send mcp.events  [sentinel-ingest]  3.00 ms  (+0.2 ms)")
    assert lines[2].startswith("      └─ kafka.consume  [sentinel-bridge]  0.10 ms  (+0.4 ms)")


def test_render_orders_siblings_by_start_time() -> None:
    data = {
        "spans": [
            _span(EVENT_TRACE, "a1", "root", 0, 10, "p", []),
            _span(EVENT_TRACE, "c3", "second", 5, 1, "p", [_ref("CHILD_OF", EVENT_TRACE, "a1")]),
            _span(EVENT_TRACE, "b2", "first", 2, 1, "p", [_ref("CHILD_OF", EVENT_TRACE, "a1")]),
        ],
        "processes": {"p": {"serviceName": "svc"}},
    }
    lines = render(parse_trace(data)).splitlines()
    assert [line.split("  [")[0].strip(" ├└─│") for line in lines] == ["root", "first", "second"]
    assert lines[1].startswith("   ├─ first")
    assert lines[2].startswith("   └─ second")


def test_render_shows_a_linked_trace_under_the_span_it_links_to() -> None:
    event_spans = parse_trace(EVENT_TRACE_JSON)
    insert_spans = parse_trace(INSERT_TRACE_JSON)
    consume = _by_name(event_spans)["kafka.consume"]
    lines = render(event_spans, {consume.span_id: insert_spans}).splitlines()
    assert len(lines) == 5
    consume_line = next(i for i, line in enumerate(lines) if "kafka.consume" in line)
    assert consume_line == 2
    assert lines[3] == f"         └─ ⇢ linked from trace {INSERT_TRACE}:"
    # The linked span sits deeper than the consume span, and its offset counts from the event trace.
    assert lines[4].startswith("            └─ clickhouse.insert_batch  [sentinel-worker]  2.50 ms  (+6.0 ms)")


def test_render_puts_the_link_after_the_children_of_that_span() -> None:
    event_spans = parse_trace(EVENT_TRACE_JSON)
    insert_spans = parse_trace(INSERT_TRACE_JSON)
    producer = _by_name(event_spans)["send mcp.events"]
    lines = render(event_spans, {producer.span_id: insert_spans}).splitlines()
    assert "kafka.consume" in lines[2]
    assert lines[2].lstrip().startswith("├─")  # not the last entry under the producer any more
    assert "linked from trace" in lines[3]
    assert "clickhouse.insert_batch" in lines[4]


def test_render_ignores_links_to_spans_not_in_the_trace() -> None:
    event_spans = parse_trace(EVENT_TRACE_JSON)
    text = render(event_spans, {"ffffffffffffffff": parse_trace(INSERT_TRACE_JSON)})
    assert "clickhouse.insert_batch" not in text
    assert text == render(event_spans)


def test_render_of_an_orphan_shows_it_as_a_root() -> None:
    data = {
        "spans": [_span(EVENT_TRACE, "c3", "kafka.consume", 0, 1, "p", [_ref("CHILD_OF", EVENT_TRACE, "b2")])],
        "processes": {"p": {"serviceName": "svc"}},
    }
    assert render(parse_trace(data)).startswith("└─ kafka.consume")


def test_render_of_nothing() -> None:
    assert render([]) == "(no spans)"

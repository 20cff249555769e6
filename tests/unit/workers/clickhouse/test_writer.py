"""workers.clickhouse.writer, the parts without a server: event links and error classification."""

from __future__ import annotations

import pytest
from clickhouse_driver import errors as ch_errors
from opentelemetry import context, trace
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from sentinel import semconv
from workers.chunk import Chunk, ChunkEvent
from workers.clickhouse import writer
from workers.clickhouse.writer import PermanentInsertError, TransientInsertError, classify, event_links

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"


def _chunk(*events: ChunkEvent) -> Chunk:
    return Chunk("mcp.events", 1, events[0].offset, events[-1].offset, events, ack_to="")


def _event(offset: int, traceparent: str, tracestate: str = "") -> ChunkEvent:
    return ChunkEvent(offset, f"00000000-0000-4000-8000-{offset:012d}", traceparent, tracestate, "t", 0, "{}")


def test_one_link_per_event_with_its_message_id_and_offset() -> None:
    chunk = _chunk(
        _event(40, f"00-{TRACE_A}-00f067aa0ba902b7-01"),
        _event(41, f"00-{TRACE_B}-b7ad6b7169203331-00", "vendor=x"),
    )
    links = event_links(chunk)
    assert len(links) == 2
    first, second = links
    assert f"{first.context.trace_id:032x}" == TRACE_A
    assert f"{first.context.span_id:016x}" == "00f067aa0ba902b7"
    assert first.context.is_remote
    assert int(first.context.trace_flags) == 1
    assert dict(first.attributes) == {
        semconv.MESSAGING_MESSAGE_ID: "00000000-0000-4000-8000-000000000040",
        semconv.MESSAGING_KAFKA_OFFSET: 40,
    }
    assert f"{second.context.trace_id:032x}" == TRACE_B
    assert int(second.context.trace_flags) == 0
    assert second.context.trace_state.get("vendor") == "x"
    assert second.attributes[semconv.MESSAGING_KAFKA_OFFSET] == 41


def test_events_without_a_valid_traceparent_get_no_link() -> None:
    chunk = _chunk(
        _event(1, ""),
        _event(2, f"00-{TRACE_A}-00f067aa0ba902b7-01"),
        _event(3, "garbage"),
        _event(4, f"00-{'0' * 32}-00f067aa0ba902b7-01"),
    )
    links = event_links(chunk)
    assert [link.attributes[semconv.MESSAGING_KAFKA_OFFSET] for link in links] == [2]


def test_a_chunk_without_any_context_has_no_links() -> None:
    assert event_links(_chunk(_event(1, ""), _event(2, ""))) == []


@pytest.mark.parametrize(
    "code",
    [159, 202, 209, 210, 241, 242, 252, 319, 425],
)
def test_busy_or_restarting_server_errors_are_transient(code: int) -> None:
    assert classify(ch_errors.ServerException("server busy", code=code)) is TransientInsertError


@pytest.mark.parametrize(
    "code",
    [53, 60, 62, 27, 117, None],  # type mismatch, unknown table, syntax error, cannot parse, incorrect data
)
def test_errors_about_the_rows_or_the_query_are_permanent(code: int | None) -> None:
    assert classify(ch_errors.ServerException("refused", code=code)) is PermanentInsertError


@pytest.mark.parametrize(
    "exc",
    [
        ch_errors.NetworkError("connection refused"),
        ch_errors.SocketTimeoutError("timed out"),
        ch_errors.UnexpectedPacketFromServerError("half a packet"),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out"),
        OSError("no route to host"),
        EOFError("Unexpected EOF while reading bytes"),
    ],
)
def test_network_failures_are_transient(exc: BaseException) -> None:
    assert classify(exc) is TransientInsertError


@pytest.mark.parametrize("exc", [ValueError("bad uuid"), TypeError("not a str"), KeyError("x")])
def test_other_errors_are_permanent(exc: BaseException) -> None:
    assert classify(exc) is PermanentInsertError


def test_error_kinds_are_distinct_runtime_errors() -> None:
    assert issubclass(TransientInsertError, RuntimeError)
    assert issubclass(PermanentInsertError, RuntimeError)
    assert not issubclass(TransientInsertError, PermanentInsertError)


def test_events_sharing_a_consume_span_share_one_link_with_their_range() -> None:
    shared = f"00-{TRACE_A}-00f067aa0ba902b7-01"
    chunk = _chunk(
        _event(7, shared), _event(8, shared), _event(9, f"00-{TRACE_B}-b7ad6b7169203331-01"), _event(10, shared)
    )
    links = event_links(chunk)
    assert len(links) == 2
    group, single = links
    assert f"{group.context.span_id:016x}" == "00f067aa0ba902b7"
    assert dict(group.attributes) == {
        semconv.MESSAGING_BATCH_MESSAGE_COUNT: 3,
        semconv.KAFKA_FIRST_OFFSET: 7,
        semconv.KAFKA_LAST_OFFSET: 10,
    }
    assert single.attributes[semconv.MESSAGING_MESSAGE_ID] == "00000000-0000-4000-8000-000000000009"


class _RecordingClient:
    """Stands in for clickhouse-driver's Client: answers `SELECT version()`, records the rest."""

    def __init__(self) -> None:
        self.inserts: list[tuple[str, list]] = []

    def execute(self, query: str, params: object = None, **_kwargs: object) -> list:
        if query == "SELECT version()":
            return [("18.16.1",)]
        if query.startswith("INSERT"):
            self.inserts.append((query, params))  # type: ignore[arg-type]
        return []


def _distinct_events(count: int) -> Chunk:
    return _chunk(*(_event(i, f"00-{TRACE_A[:-4]}{i:04x}-00f067aa0ba902b7-01") for i in range(1, count + 1)))


def test_a_recorded_insert_span_links_every_event_and_overflow_goes_to_child_spans(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "span_limits", lambda: SpanLimits(max_links=2))
    client = _RecordingClient()
    assert writer.insert_chunk(client, _distinct_events(5)) == 5  # type: ignore[arg-type]
    finished = {span.name: span for span in spans.get_finished_spans() if span.name == semconv.SPAN_INSERT}
    overflow = [span for span in spans.get_finished_spans() if span.name == f"{semconv.SPAN_INSERT}.links"]
    insert = finished[semconv.SPAN_INSERT]
    assert len(insert.links) == 2
    assert [len(span.links) for span in overflow] == [2, 1]
    assert all(span.parent.span_id == insert.context.span_id for span in overflow)
    linked = [link.attributes[semconv.MESSAGING_KAFKA_OFFSET] for span in (insert, *overflow) for link in span.links]
    assert sorted(linked) == [1, 2, 3, 4, 5]
    assert len(client.inserts) == 1


def test_an_unsampled_insert_span_builds_no_links(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_chunk: Chunk) -> list:
        raise AssertionError("links were built for a span that is not recorded")

    monkeypatch.setattr(writer, "event_links", refuse)
    unsampled = SpanContext(int(TRACE_B, 16), 0x00F067AA0BA902B7, is_remote=True, trace_flags=TraceFlags(0))
    client = _RecordingClient()
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(unsampled)))
    try:
        assert writer.insert_chunk(client, _distinct_events(3)) == 3  # type: ignore[arg-type]
    finally:
        context.detach(token)
    assert [span.name for span in spans.get_finished_spans()] == []
    assert len(client.inserts) == 1

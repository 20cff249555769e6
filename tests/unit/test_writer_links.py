"""workers.clickhouse.writer, the parts without a server: event links and error classification."""

from __future__ import annotations

import pytest
from clickhouse_driver import errors as ch_errors

from sentinel import semconv
from workers.chunk import Chunk, ChunkEvent
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

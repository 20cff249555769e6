"""The bridge's per-poll handling: spans per context run, dead letters, chunks and the watermark."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka import Message, TopicPartition
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel import semconv
from workers.bridge import consume_span
from workers.bridge.chunker import Chunker
from workers.bridge.consumer import Bridge, BridgeConfig
from workers.bridge.dispatcher import Dispatcher
from workers.chunk import EVENT_WIRE_OVERHEAD, Chunk

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Letters:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, letter, on_done) -> None:
        self.sent.append(letter)
        on_done(None)

    def poll(self, timeout: float = 0.0) -> None:
        pass

    def flush(self, timeout: float = 0.0) -> int:
        return 0


def assign(bridge: Bridge, *partitions: int) -> None:
    """What the consumer's rebalance hands the bridge: `partitions` of mcp.events, newly assigned."""
    bridge.on_assign(None, [TopicPartition("mcp.events", p) for p in partitions])  # type: ignore[arg-type]


def _bridge(max_events: int = 100) -> tuple[Bridge, list[Chunk], _Letters]:
    sent: list[Chunk] = []
    dispatcher = Dispatcher(sent.append, list, max_inflight=10, ack_timeout_s=60)
    chunker = Chunker("mcp.events", max_events=max_events, max_wait_s=10, ack_to="acks")
    letters = _Letters()
    bridge = Bridge(BridgeConfig(), chunker, dispatcher, letters, consumer=object())  # type: ignore[arg-type]
    assign(bridge, 0, 1)
    return bridge, sent, letters


def _message(offset: int, trace_id: str | None, partition: int = 0, value: bytes | None = None) -> Message:
    headers = [("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())] if trace_id else []
    body = (
        value
        if value is not None
        else orjson.dumps({"type": "tool_call", "event_id": f"{offset:08d}-0000-4000-8000-000000000000"})
    )
    return Message(
        topic="mcp.events",
        partition=partition,
        offset=offset,
        headers=headers,
        value=body,
        timestamp=(1, 1_700_000_000_000),
    )


def test_messages_sharing_a_context_share_one_consume_span(spans: InMemorySpanExporter) -> None:
    bridge, _, _ = _bridge()
    bridge.handle([_message(0, TRACE), _message(1, TRACE), _message(2, TRACE), _message(3, OTHER)], now=0.0)
    consume = [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_CONSUME]
    assert [f"{s.context.trace_id:032x}" for s in consume] == [TRACE, OTHER]
    batch, single = consume
    assert batch.parent.span_id == 0x00F067AA0BA902B7
    assert batch.attributes[semconv.MESSAGING_BATCH_MESSAGE_COUNT] == 3
    assert batch.attributes[semconv.KAFKA_FIRST_OFFSET] == 0
    assert batch.attributes[semconv.KAFKA_LAST_OFFSET] == 2
    assert semconv.MESSAGING_MESSAGE_ID not in batch.attributes
    assert single.attributes[semconv.MESSAGING_KAFKA_OFFSET] == 3
    assert single.attributes[semconv.MESSAGING_MESSAGE_ID] == "00000003-0000-4000-8000-000000000000"


def test_each_event_carries_its_consume_span_context_into_the_chunk(spans: InMemorySpanExporter) -> None:
    bridge, _, _ = _bridge(max_events=3)
    bridge.handle([_message(0, TRACE), _message(1, TRACE), _message(2, OTHER)], now=0.0)
    bridge.dispatcher.pump(0.0)
    (chunk,) = [e.chunk for e in bridge.dispatcher.inflight.values()]
    consume = [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_CONSUME]
    expected = [f"00-{s.context.trace_id:032x}-{s.context.span_id:016x}-01" for s in consume]
    assert [e.traceparent for e in chunk.events] == [expected[0], expected[0], expected[1]]
    assert (chunk.first_offset, chunk.last_offset) == (0, 2)


def test_a_partition_change_starts_a_new_span(spans: InMemorySpanExporter) -> None:
    bridge, _, _ = _bridge()
    bridge.handle([_message(0, TRACE, partition=0), _message(0, TRACE, partition=1)], now=0.0)
    assert len([s for s in spans.get_finished_spans() if s.name == semconv.SPAN_CONSUME]) == 2


def test_an_invalid_message_is_dead_lettered_with_an_error_span_of_its_own(spans: InMemorySpanExporter) -> None:
    bridge, _, letters = _bridge()
    bridge.handle([_message(0, TRACE), _message(1, TRACE, value=b"not json"), _message(2, TRACE)], now=0.0)
    (letter,) = letters.sent
    assert letter.source_offset == 1 and "not JSON" in letter.reason
    consume = [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_CONSUME]
    assert len(consume) == 3
    failed = [s for s in consume if not s.status.is_ok]
    assert len(failed) == 1 and failed[0].attributes[semconv.MESSAGING_KAFKA_OFFSET] == 1
    assert semconv.DEAD_LETTER_REASON in failed[0].attributes


def test_dead_letters_leave_a_gap_the_watermark_fills() -> None:
    bridge, _, _ = _bridge()
    bridge.handle([_message(0, TRACE), _message(1, TRACE, value=b"{}"), _message(2, TRACE)], now=0.0)
    assert bridge.watermarks.committable() == {0: 0}  # the open chunk holds 0 and 2
    (chunk,) = bridge.chunker.close_all()
    assert [e.offset for e in chunk.events] == [0, 2]
    bridge.watermarks.settle(0, chunk.first_offset)
    assert bridge.watermarks.committable() == {0: 3}


def test_chunks_closed_for_size_keep_the_watermark_in_step() -> None:
    size = len(_message(0, TRACE).value()) + EVENT_WIRE_OVERHEAD  # no tracestate
    chunker = Chunker("mcp.events", max_events=100, max_wait_s=10, max_bytes=2 * size, ack_to="acks")
    dispatcher = Dispatcher([].append, list, max_inflight=10, ack_timeout_s=60)
    bridge = Bridge(BridgeConfig(), chunker, dispatcher, _Letters(), consumer=object())  # type: ignore[arg-type]
    assign(bridge, 0)
    bridge.handle([_message(offset, TRACE) for offset in range(5)], now=0.0)
    bridge.dispatcher.pump(0.0)
    chunks = [entry.chunk for entry in bridge.dispatcher.inflight.values()]
    assert [[e.offset for e in c.events] for c in chunks] == [[0, 1], [2, 3]]
    # The chunk a size close began (at 2) is a unit of its own: its ack alone commits nothing, and
    # with both acked the commit stops at the open chunk's first event.
    assert bridge.watermarks.settle(0, 2)
    assert bridge.watermarks.committable() == {0: 0}
    assert bridge.watermarks.settle(0, 0)
    assert bridge.watermarks.committable() == {0: 4}


def test_a_message_too_large_for_a_chunk_is_dead_lettered_and_the_rest_chunked() -> None:
    letters = _Letters()
    # Room for the two small events (~170 bytes each as counted), not for the large one alone.
    chunker = Chunker("mcp.events", max_events=100, max_wait_s=10, max_bytes=400, ack_to="acks")
    dispatcher = Dispatcher([].append, list, max_inflight=10, ack_timeout_s=60)
    bridge = Bridge(BridgeConfig(), chunker, dispatcher, letters, consumer=object())  # type: ignore[arg-type]
    assign(bridge, 0)
    big = orjson.dumps({"type": "tool_call", "attributes": {"blob": "x" * 500}})
    bridge.handle([_message(0, TRACE), _message(1, TRACE, value=big), _message(2, TRACE)], now=0.0)
    (letter,) = letters.sent
    assert letter.source_offset == 1
    assert letter.reason == f"too large: {len(big)} bytes, more than a chunk holds (400)"
    (chunk,) = bridge.chunker.close_all()
    assert [e.offset for e in chunk.events] == [0, 2]


def test_messages_of_revoked_partitions_are_ignored(spans: InMemorySpanExporter) -> None:
    bridge, _, _ = _bridge()
    bridge.on_lost(None, [TopicPartition("mcp.events", 0)])  # type: ignore[arg-type]
    bridge.handle([_message(0, TRACE, partition=0)], now=0.0)
    assert not spans.get_finished_spans()
    assert bridge.watermarks.committable() == {}


def test_an_unexpected_error_dead_letters_the_message_and_the_loop_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.bridge.consumer as consumer_module

    real_decode = consumer_module.decode

    def flaky(value: bytes | None, *args: object, **kwargs: object) -> object:
        if value == b"boom":
            raise RecursionError("too deep")
        return real_decode(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(consumer_module, "decode", flaky)
    bridge, _, letters = _bridge()
    bridge.handle([_message(0, TRACE), _message(1, TRACE, value=b"boom"), _message(2, TRACE)], now=0.0)
    (letter,) = letters.sent
    assert letter.source_offset == 1 and "RecursionError" in letter.reason
    (chunk,) = bridge.chunker.close_all()
    assert [e.offset for e in chunk.events] == [0, 2]


def test_with_tracing_off_events_carry_their_message_context_unchanged(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge, _, _ = _bridge(max_events=3)
    # What the API gives when no SDK tracer provider is installed.
    monkeypatch.setattr(consume_span, "tracer", trace.NoOpTracer)
    bridge.handle([_message(0, TRACE), _message(1, None), _message(2, OTHER)], now=0.0)
    bridge.dispatcher.pump(0.0)
    (chunk,) = [e.chunk for e in bridge.dispatcher.inflight.values()]
    assert [e.traceparent for e in chunk.events] == [
        f"00-{TRACE}-00f067aa0ba902b7-01",
        "",
        f"00-{OTHER}-00f067aa0ba902b7-01",
    ]
    assert not [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_CONSUME]


class _Consumer:
    """Hands out one poll's messages per step and records pauses."""

    def __init__(self, *polls: list[Message]) -> None:
        self.polls = list(polls)
        self.paused = False

    def consume(self, _count: int, _timeout: float) -> list[Message]:
        return self.polls.pop(0) if self.polls else []

    def pause(self, _partitions: object) -> None:
        self.paused = True

    def resume(self, _partitions: object) -> None:
        self.paused = False

    def commit(self, **_: object) -> None:
        pass


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_partition_closes_its_chunk_but_a_paused_one_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr("workers.bridge.consumer.time.monotonic", clock)
    sent: list[Chunk] = []
    room = {"free": True}

    class _Gate(Dispatcher):
        @property
        def saturated(self) -> bool:
            return not room["free"]

    chunker = Chunker("mcp.events", max_events=100, max_wait_s=10, max_idle_s=0.15, ack_to="acks")
    consumer = _Consumer([_message(0, TRACE)], [], [], [], [], [_message(1, TRACE)], [])
    bridge = Bridge(
        BridgeConfig(), chunker, _Gate(sent.append, list, max_inflight=10, ack_timeout_s=60), _Letters(), consumer
    )  # type: ignore[arg-type]
    assign(bridge, 0)

    bridge.step()  # reads offset 0
    room["free"] = False
    clock.now += 0.05
    bridge.step()  # no room left in flight: pauses
    clock.now += 1.0
    bridge.step()  # paused for a second: nothing came because nothing was asked, so the chunk stays
    assert consumer.paused and chunker.is_open(0) and sent == []
    room["free"] = True
    bridge.step()  # resumes
    clock.now += 0.1
    bridge.step()  # nothing fetched yet: quiet for 0.1 s since the resume, not 1.15 s
    assert chunker.is_open(0)
    bridge.step()  # reads offset 1 into the same chunk
    assert not consumer.paused and chunker.is_open(0)
    clock.now += 0.2
    bridge.step()  # quiet for 0.2 s while reading: closed
    assert [[e.offset for e in c.events] for c in sent] == [[0, 1]]

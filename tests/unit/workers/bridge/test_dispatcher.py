"""workers.bridge.dispatcher: bounded in-flight chunks, acks, resend and broker outages."""

from __future__ import annotations

from workers.bridge.dispatcher import Dispatcher
from workers.chunk import Chunk, ChunkEvent


def _chunk(partition: int, first: int, size: int = 2) -> Chunk:
    events = tuple(ChunkEvent(o, f"id-{o}", "", "", "tool_call", 0, "{}") for o in range(first, first + size))
    return Chunk("mcp.events", partition, first, first + size - 1, events, ack_to="acks:b")


class FakeBroker:
    """A send function that records chunks, can be switched off, and an ack list to read."""

    def __init__(self) -> None:
        self.sent: list[Chunk] = []
        self.down = False
        self.acks: list[str] = []
        self.acks_fail = False

    def send(self, chunk: Chunk) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.sent.append(chunk)

    def receive_acks(self) -> list[str]:
        if self.acks_fail:
            raise ConnectionError("redis unreachable")
        tokens, self.acks = self.acks, []
        return tokens


def _dispatcher(broker: FakeBroker, max_inflight: int = 2, ack_timeout_s: float = 30.0) -> Dispatcher:
    return Dispatcher(
        broker.send, broker.receive_acks, max_inflight=max_inflight, ack_timeout_s=ack_timeout_s, retry_after_s=1.0
    )


def test_sends_at_most_max_inflight() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker, max_inflight=2)
    chunks = [_chunk(0, 0), _chunk(0, 2), _chunk(0, 4)]
    for chunk in chunks:
        dispatcher.submit(chunk)
    dispatcher.pump(now=0.0)
    assert broker.sent == chunks[:2]
    assert set(dispatcher.inflight) == {chunks[0].token, chunks[1].token}
    assert list(dispatcher.pending) == [chunks[2]]


def test_saturated_when_full_or_anything_pending() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker, max_inflight=2)
    assert dispatcher.saturated is False
    dispatcher.submit(_chunk(0, 0))
    assert dispatcher.saturated is True  # pending, not yet sent
    dispatcher.pump(now=0.0)
    assert dispatcher.saturated is False  # one of two in flight
    dispatcher.submit(_chunk(0, 2))
    dispatcher.pump(now=0.0)
    assert not dispatcher.pending
    assert dispatcher.saturated is True  # full


def test_acks_free_capacity_and_return_the_chunks() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker, max_inflight=1)
    first, second = _chunk(0, 0), _chunk(1, 0)
    dispatcher.submit(first)
    dispatcher.submit(second)
    dispatcher.pump(now=0.0)
    assert broker.sent == [first]

    broker.acks = [first.token, "mcp.events-9-0-0"]  # an unknown token is ignored
    assert dispatcher.collect(now=1.0) == [first]
    assert dispatcher.inflight == {}
    dispatcher.pump(now=1.0)
    assert broker.sent == [first, second]
    assert dispatcher.collect(now=1.5) == []


def test_a_failing_send_keeps_the_chunk_pending_and_waits_retry_after() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker)
    chunk = _chunk(0, 0)
    dispatcher.submit(chunk)
    broker.down = True
    dispatcher.pump(now=10.0)
    assert list(dispatcher.pending) == [chunk]
    assert dispatcher.inflight == {}
    assert dispatcher.saturated is True

    broker.down = False
    dispatcher.pump(now=10.5)  # within retry_after_s: not even tried
    assert broker.sent == []
    assert list(dispatcher.pending) == [chunk]

    dispatcher.pump(now=11.0)
    assert broker.sent == [chunk]
    assert not dispatcher.pending
    assert chunk.token in dispatcher.inflight


def test_an_unacked_chunk_is_resent_after_ack_timeout_with_attempt_incremented() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker, ack_timeout_s=30.0)
    chunk = _chunk(0, 0)
    dispatcher.submit(chunk)
    dispatcher.pump(now=0.0)

    dispatcher.collect(now=29.0)
    assert len(broker.sent) == 1

    dispatcher.collect(now=30.0)
    assert len(broker.sent) == 2
    resent = broker.sent[1]
    assert resent.token == chunk.token
    assert resent.attempt == 2
    assert resent.events == chunk.events
    assert dispatcher.inflight[chunk.token].chunk.attempt == 2

    dispatcher.collect(now=45.0)  # the timeout restarts from the resend
    assert len(broker.sent) == 2
    dispatcher.collect(now=60.0)
    assert broker.sent[-1].attempt == 3

    broker.acks = [chunk.token]
    assert [c.token for c in dispatcher.collect(now=61.0)] == [chunk.token]
    assert dispatcher.inflight == {}


def test_a_failing_resend_keeps_the_chunk_in_flight_and_blocks_sends() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker, max_inflight=5, ack_timeout_s=10.0)
    chunk = _chunk(0, 0)
    dispatcher.submit(chunk)
    dispatcher.pump(now=0.0)
    broker.down = True
    dispatcher.collect(now=10.0)
    assert dispatcher.inflight[chunk.token].chunk.attempt == 1

    broker.down = False
    later = _chunk(0, 2)
    dispatcher.submit(later)
    dispatcher.pump(now=10.5)  # blocked for retry_after_s
    assert broker.sent == [chunk]
    dispatcher.collect(now=11.0)
    assert broker.sent[-1].attempt == 2


def test_reading_acks_that_raises_does_not_crash() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker)
    chunk = _chunk(0, 0)
    dispatcher.submit(chunk)
    dispatcher.pump(now=0.0)
    broker.acks_fail = True
    assert dispatcher.collect(now=1.0) == []
    assert chunk.token in dispatcher.inflight  # still waiting for its ack

    broker.acks_fail = False
    broker.acks = [chunk.token]
    assert dispatcher.collect(now=2.0) == [chunk]


def test_forget_drops_pending_and_inflight_chunks_of_revoked_partitions() -> None:
    broker = FakeBroker()
    dispatcher = _dispatcher(broker, max_inflight=2)
    sent0, sent1, waiting0, waiting2 = _chunk(0, 0), _chunk(1, 0), _chunk(0, 2), _chunk(2, 0)
    for chunk in (sent0, sent1, waiting0, waiting2):
        dispatcher.submit(chunk)
    dispatcher.pump(now=0.0)
    assert dispatcher.inflight_for([0]) == 2
    assert dispatcher.inflight_for([0, 1, 2]) == 4

    dispatcher.forget([0])
    assert set(dispatcher.inflight) == {sent1.token}
    assert list(dispatcher.pending) == [waiting2]
    assert dispatcher.inflight_for([0]) == 0

    broker.acks = [sent0.token]  # a late ack of a forgotten chunk is not reported
    assert dispatcher.collect(now=1.0) == []


def test_acks_are_read_at_most_once_per_poll_interval_and_not_when_nothing_is_in_flight() -> None:
    broker = FakeBroker()
    reads = []
    dispatcher = Dispatcher(
        broker.send,
        lambda: reads.append(1) or broker.receive_acks(),
        max_inflight=2,
        ack_timeout_s=30.0,
        ack_poll_interval_s=0.01,
    )
    assert dispatcher.collect(0.0) == [] and not reads  # nothing in flight: no round trip
    chunk = _chunk(0, 0)
    dispatcher.submit(chunk)
    dispatcher.pump(0.0)
    broker.acks.append(chunk.token)
    assert dispatcher.collect(0.001) == [chunk]
    dispatcher.submit(_chunk(0, 2))
    dispatcher.pump(0.002)
    assert dispatcher.collect(0.005) == [] and len(reads) == 1  # within the interval
    assert dispatcher.collect(0.012) == [] and len(reads) == 2

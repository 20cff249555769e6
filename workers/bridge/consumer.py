"""The bridge's consume loop: Kafka `mcp.events` -> per-message span -> chunks -> Celery -> commit.

Shaped like an arroyo pipeline (decode, chunk, dispatch, commit as separate steps; pause instead
of buffering; commit only from settled work), but as one loop over confluent-kafka: arroyo batches
across partitions and commits in submission order, while we need per-partition chunks whose acks
arrive out of order from Celery. See workers/bridge/__init__.py for the steps.

Guarantee: an offset is committed only when every message below it is in ClickHouse (chunk acked
by a worker) or in the dead-letter topic (acked by Kafka).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from sentinel import metrics, settings
from workers.bridge.chunker import Chunker
from workers.bridge.consume_span import ConsumeSpan, scan_headers
from workers.bridge.decode import InvalidMessage, decode
from workers.bridge.dispatcher import Dispatcher
from workers.bridge.watermark import Watermarks
from workers.chunk import EVENT_WIRE_OVERHEAD, ChunkEvent
from workers.deadletter import DeadLetter, DeadLetterProducer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BridgeConfig:
    topic: str = settings.EVENTS_TOPIC
    group: str = settings.BRIDGE_GROUP
    bootstrap: str = settings.KAFKA_BOOTSTRAP
    poll_batch: int = 1000
    poll_timeout_s: float = 0.05
    commit_interval_s: float = settings.COMMIT_INTERVAL_S
    revoke_settle_s: float = 5.0
    shutdown_grace_s: float = 20.0


def consumer_config(config: BridgeConfig) -> dict[str, object]:
    return {
        "bootstrap.servers": config.bootstrap,
        "group.id": config.group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": 10_000,
        # A member learns of a rebalance from a heartbeat's answer: at 1 s, the bridge's second
        # consumer sat idle for up to a second after the first was assigned every partition.
        "heartbeat.interval.ms": 250,
        "max.poll.interval.ms": 300_000,
        "queued.max.messages.kbytes": 64 * 1024,
        # The broker answers a fetch once 256 KiB are ready or 50 ms have passed: at single-event
        # rates, answering as soon as any byte was ready meant a fetch per handful of messages
        # (Kafka 129 -> 76 us and the bridge 49 -> 28 us of CPU per event, for at most 50 ms).
        "fetch.wait.max.ms": 50,
        "fetch.min.bytes": 256 * 1024,
    }


class Bridge:
    def __init__(
        self,
        config: BridgeConfig,
        chunker: Chunker,
        dispatcher: Dispatcher,
        dead_letters: DeadLetterProducer,
        consumer: Consumer | None = None,
    ) -> None:
        self.config = config
        self.chunker = chunker
        self.dispatcher = dispatcher
        self.dead_letters = dead_letters
        self.consumer = consumer or Consumer(consumer_config(config))
        self.watermarks = Watermarks()
        self._assigned: set[int] = set()
        self._paused = False
        self._committed: dict[int, int] = {}
        self._next_commit = 0.0
        self._running = True
        self._retry_letters: list[DeadLetter] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler)."""
        self._running = False

    def run(self) -> None:
        """Consume until stop(); then settle what is in flight, commit, and close."""
        self.consumer.subscribe(
            [self.config.topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost
        )
        log.info("bridge consuming %s as group %s", self.config.topic, self.config.group)
        try:
            while self._running:
                self.step()
            self._shutdown()
        finally:
            self.consumer.close()

    def step(self) -> None:
        """One iteration: read, handle, dispatch, collect acks, backpressure, commit."""
        messages = self.consumer.consume(self.config.poll_batch, self.config.poll_timeout_s)
        now = time.monotonic()
        if messages:
            self.handle(messages, now)
        for chunk in self.chunker.due(now, reading=not self._paused):
            self.dispatcher.submit(chunk)
        self._settle(now)
        self._apply_backpressure()
        if now >= self._next_commit:
            self._commit(asynchronous=True)
            self._next_commit = now + self.config.commit_interval_s

    # -- per message -------------------------------------------------------------------------

    def handle(self, messages: list[Message], now: float) -> None:
        """Trace, decode and chunk one poll's messages, in offset order per partition."""
        current: ConsumeSpan | None = None
        extra_bytes = 0
        consumed: dict[int, int] = {}
        # Looked up once per poll rather than once per message: this loop runs for every event.
        assigned, chunker, watermarks, submit = self._assigned, self.chunker, self.watermarks, self.dispatcher.submit
        # A message larger than a chunk may hold is dead-lettered: it could not be sent.
        group, max_bytes = self.config.group, chunker.max_bytes
        try:
            for message in messages:
                error = message.error()
                if error is not None:
                    # Partition EOF is not enabled (consumer_config): every error here is worth a line.
                    log.warning("consumer error: %s", error)
                    continue
                partition = message.partition()
                if partition not in assigned:
                    continue  # revoked between poll and here
                offset = message.offset()
                consumed[partition] = consumed.get(partition, 0) + 1
                headers = message.headers()  # a fresh list on every call: read it once
                scanned = scan_headers(headers)
                key = scanned.trace_key
                if current is None or not current.continues(partition, key):
                    if current is not None:
                        current.end()
                    current = ConsumeSpan(message, headers, scanned, group)
                    # What each event of this run adds to a chunk besides its value (workers/chunk.py).
                    extra_bytes = len(current.tracestate) + EVENT_WIRE_OVERHEAD
                value = message.value()
                try:
                    event = decode(
                        value,
                        scanned.event_id,
                        topic=message.topic(),
                        partition=partition,
                        offset=offset,
                        origin=scanned.origin,
                        max_bytes=max_bytes,
                    )
                except Exception as exc:  # noqa: BLE001 - no message may stop the consumer
                    reason = exc.reason if isinstance(exc, InvalidMessage) else f"cannot process: {exc!r}"[:500]
                    # A dead letter gets a span of its own, so the error marks only its message.
                    if current.count:
                        current.end()
                        current = ConsumeSpan(message, headers, scanned, group)
                    current.fail(offset, reason)
                    current.end()
                    current = None
                    self._dead_letter(message, reason)
                    continue
                current.add(offset, event.event_id)
                _, timestamp_ms = message.timestamp()
                chunk_event = ChunkEvent(
                    offset,
                    event.event_id,
                    current.traceparent,
                    current.tracestate,
                    event.event_type,
                    timestamp_ms if timestamp_ms > 0 else int(time.time() * 1000),
                    event.payload,
                )
                opens = not chunker.is_open(partition)
                closed = chunker.add(partition, chunk_event, now, len(value) + extra_bytes)
                if closed is not None:
                    submit(closed)
                    opens = opens or closed.last_offset != offset  # closed to make room: this event begins the next
                mark = watermarks[partition]
                if opens:
                    mark.open(offset)
                # Consumed only once its unit (chunk or dead letter) is open: a crash before then
                # must not let a commit pass this message.
                mark.consumed(offset)
        finally:
            if current is not None:
                current.end()
            for partition, count in consumed.items():
                metrics.BRIDGE_CONSUMED.labels(str(partition)).inc(count)

    def _dead_letter(self, message: Message, reason: str) -> None:
        partition, offset = message.partition(), message.offset()
        self.watermarks[partition].open(offset)
        self.watermarks[partition].consumed(offset)
        metrics.BRIDGE_DEAD_LETTERS.labels(reason.split(":", 1)[0]).inc()
        letter = DeadLetter(
            value=message.value(),
            key=message.key(),
            headers=list(message.headers() or ()),
            reason=reason,
            stage="bridge",
            source_topic=message.topic(),
            source_partition=partition,
            source_offset=offset,
        )
        log.warning("dead-lettering %s[%d]@%d: %s", message.topic(), partition, offset, reason)
        self._send_letter(letter)

    def _send_letter(self, letter: DeadLetter) -> None:
        def on_done(err: KafkaError | None) -> None:
            if err is None:
                self.watermarks.settle(letter.source_partition, letter.source_offset)
            else:
                log.error("dead letter for offset %d not written, will retry: %s", letter.source_offset, err)
                self._retry_letters.append(letter)

        self.dead_letters.send(letter, on_done)

    # -- acks, backpressure, commits ---------------------------------------------------------

    def _settle(self, now: float) -> None:
        self.dispatcher.pump(now)
        for chunk in self.dispatcher.collect(now):
            self.watermarks.settle(chunk.partition, chunk.first_offset)
        self.dead_letters.poll(0)
        retry, self._retry_letters = self._retry_letters, []
        for letter in retry:
            if letter.source_partition in self._assigned:
                self._send_letter(letter)

    def _apply_backpressure(self) -> None:
        saturated = self.dispatcher.saturated
        if saturated and not self._paused and self._assigned:
            self.consumer.pause(self._partitions(self._assigned))
            self._paused = True
            metrics.BRIDGE_PAUSED.set(1)
        elif not saturated and self._paused:
            self.consumer.resume(self._partitions(self._assigned))
            self._paused = False
            self.chunker.restart_idle_clocks(time.monotonic())
            metrics.BRIDGE_PAUSED.set(0)

    def _commit(self, *, asynchronous: bool, only: set[int] | None = None) -> None:
        offsets = [
            TopicPartition(self.config.topic, partition, offset)
            for partition, offset in self.watermarks.committable().items()
            if (only is None or partition in only)
            and partition in self._assigned
            and self._committed.get(partition) != offset
        ]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except Exception as exc:  # noqa: BLE001 - a failed commit is retried at the next interval
            log.warning("commit failed: %s", exc)
            return
        for tp in offsets:
            self._committed[tp.partition] = tp.offset
            metrics.BRIDGE_COMMITTED_OFFSET.labels(str(tp.partition)).set(tp.offset)

    def _partitions(self, partitions: set[int]) -> list[TopicPartition]:
        return [TopicPartition(self.config.topic, p) for p in sorted(partitions)]

    # -- rebalance ---------------------------------------------------------------------------

    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The consumer's rebalance callback: `partitions` are this bridge's from now on."""
        for tp in partitions:
            self._assigned.add(tp.partition)
            self.watermarks.forget(tp.partition)
            self._committed.pop(tp.partition, None)
        self._paused = False
        log.info("assigned partitions %s", sorted(tp.partition for tp in partitions))

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The consumer's rebalance callback: settle and commit what can be, then let `partitions` go."""
        revoked = {tp.partition for tp in partitions}
        log.info("revoking partitions %s", sorted(revoked))
        # Settle what can be settled quickly, commit that, and give up the rest: the new owner
        # reads from our last commit and ClickHouse deduplicates anything inserted twice.
        self.chunker.drop(revoked)
        deadline = time.monotonic() + self.config.revoke_settle_s
        while self.dispatcher.inflight_for(revoked) and time.monotonic() < deadline:
            self._settle(time.monotonic())
            time.sleep(0.05)
        self.dead_letters.flush(min(5.0, max(0.0, deadline - time.monotonic())))
        self._settle(time.monotonic())
        self._commit(asynchronous=False, only=revoked)
        self._forget(revoked)

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The consumer's callback for partitions taken away without a revoke: nothing is committed."""
        lost = {tp.partition for tp in partitions}
        log.warning("partitions lost %s; nothing committed for them", sorted(lost))
        self.chunker.drop(lost)
        self._forget(lost)

    def _forget(self, partitions: set[int]) -> None:
        self.dispatcher.forget(partitions)
        for partition in partitions:
            self.watermarks.forget(partition)
            self._committed.pop(partition, None)
        self._assigned -= partitions

    def _shutdown(self) -> None:
        """Send open chunks, wait a while for their acks, commit what settled."""
        for chunk in self.chunker.close_all():
            self.dispatcher.submit(chunk)
        deadline = time.monotonic() + self.config.shutdown_grace_s
        while (self.dispatcher.inflight or self.dispatcher.pending) and time.monotonic() < deadline:
            self._settle(time.monotonic())
            time.sleep(0.05)
        self.dead_letters.flush(5.0)
        self._settle(time.monotonic())
        self._commit(asynchronous=False)
        log.info("bridge stopped; %d chunk(s) left unacknowledged", len(self.dispatcher.inflight))

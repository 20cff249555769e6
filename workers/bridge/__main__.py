"""`python -m workers.bridge`: run the Kafka -> Celery bridge until SIGTERM or SIGINT.

SENTINEL_BRIDGE_CONSUMERS consumers (workers/bridge/supervisor.py), or with one, in this process.
Each consumer sets up logging and tracing, then loops; a signal asks the loop to stop, and the
consumer settles in-flight chunks and commits before it exits.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

from opentelemetry.instrumentation.celery import CeleryInstrumentor

from sentinel import semconv, settings
from sentinel.gc_tuning import tune_gc
from sentinel.logs import setup_logging
from sentinel.metrics import serve
from sentinel.telemetry import setup_tracing
from workers.acks import AckChannel, new_ack_key
from workers.bridge.chunker import Chunker
from workers.bridge.consumer import Bridge, BridgeConfig
from workers.bridge.dispatcher import Dispatcher
from workers.bridge.supervisor import CONSUMER_FLAG, die_with_parent, supervise
from workers.chunk import Chunk
from workers.deadletter import DeadLetterProducer


def build_bridge(config: BridgeConfig | None = None) -> Bridge:
    from workers.tasks import insert_chunk_task

    config = config or BridgeConfig()
    acks = AckChannel()
    ack_key = new_ack_key()

    def send(chunk: Chunk) -> None:
        # argsrepr: Celery would otherwise saferepr() the whole chunk for its events and logs.
        insert_chunk_task.apply_async(
            args=[chunk.to_wire()], retry=False, argsrepr=f"<chunk {chunk.token}, {len(chunk.events)} events>"
        )

    dispatcher = Dispatcher(
        send,
        lambda: acks.receive(ack_key),
        max_inflight=settings.MAX_INFLIGHT_CHUNKS,
        ack_timeout_s=settings.CHUNK_ACK_TIMEOUT_S,
        # Acks only move commits (every 0.5 s) and free in-flight slots: at 10 ms the Redis
        # round trips were ~4% of a consumer's CPU under the hop's load.
        ack_poll_interval_s=0.05,
    )
    chunker = Chunker(
        config.topic,
        max_events=settings.CHUNK_MAX_EVENTS,
        max_wait_s=settings.CHUNK_MAX_WAIT_S,
        max_idle_s=settings.CHUNK_MAX_IDLE_S or None,
        max_bytes=settings.CHUNK_MAX_BYTES,
        ack_to=ack_key,
    )
    return Bridge(config, chunker, dispatcher, DeadLetterProducer())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    setup_logging(semconv.SERVICE_BRIDGE)
    if args[:1] == [CONSUMER_FLAG]:
        die_with_parent(int(args[1]))
        return run_consumer()
    if settings.BRIDGE_CONSUMERS > 1:
        return supervise(settings.BRIDGE_CONSUMERS)
    serve(settings.BRIDGE_METRICS_PORT)
    return run_consumer()


def run_consumer() -> int:
    """One consumer in this process, until SIGTERM or SIGINT."""
    setup_tracing(semconv.SERVICE_BRIDGE)
    CeleryInstrumentor().instrument()  # publish spans and context in the task headers
    bridge = build_bridge()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    tune_gc()
    bridge.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

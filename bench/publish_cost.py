"""`python -m bench.publish_cost`: ingest's Kafka publisher alone, CPU per acknowledged publish.

THREADS threads publish through one `KafkaPublisher`, as granian's blocking threads do in an ingest
worker, each waiting for its own acknowledgement (acks=all, linger.ms as configured) before the
next, to a scratch topic of the stack's broker (`bench.publish_cost`, created with the events
topic's partition count). No HTTP, no Flask, no spans: what the publisher and librdkafka cost per
request. The CPU is the process's, split by thread: the publishing threads, the delivery-report
thread, librdkafka's own threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from bench.cpu import process_cpu_s
from ingest_app.publisher import KafkaPublisher, OutgoingMessage
from sentinel import settings
from sentinel.stack import kafka

TOPIC = "bench.publish_cost"
_TRACEPARENT = b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"
_EVENT_ID = b"0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f"
_TASKS = Path("/proc/self/task")


def _thread_cpu_s() -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of this process."""
    found = {}
    for task in _TASKS.iterdir():
        used = process_cpu_s(int(task.name), proc=_TASKS)  # a thread's stat reads like a process's
        if used is not None:  # None: ended meanwhile
            found[int(task.name)] = used
    return found


def _thread_name(tid: int) -> str:
    try:
        return (_TASKS / str(tid) / "comm").read_text().strip()
    except OSError:
        return "?"


def measure(threads: int, seconds: float, events: int = 1, topic: str = TOPIC) -> dict[str, float]:
    """Publish `events` messages per call from `threads` threads for `seconds`; CPU per publish in us,
    in all and by kind of thread (the publishing threads are measured before they end)."""
    publisher = KafkaPublisher(topic=topic)
    message = OutgoingMessage(b"session", b"x" * 330, [("traceparent", _TRACEPARENT), ("event_id", _EVENT_ID)])
    batch = [message] * events
    publisher.publish(batch)  # the producer, its report thread and the broker connection exist first
    counts = [0] * threads
    errors: list[BaseException] = []
    stop = time.monotonic() + seconds
    measured = threading.Barrier(threads + 1)

    def publish(slot: int) -> None:
        try:
            while time.monotonic() < stop:
                publisher.publish(batch)
                counts[slot] += 1
        except BaseException as exc:  # noqa: BLE001 - re-raised by the measuring thread
            errors.append(exc)
        measured.wait()  # alive until the last reading, so its CPU is still in /proc
        measured.wait()

    pool = [threading.Thread(target=publish, args=(slot,)) for slot in range(threads)]
    before, started, cpu_before = _thread_cpu_s(), time.monotonic(), time.process_time()
    for thread in pool:
        thread.start()
    measured.wait()
    after, elapsed, cpu_after = _thread_cpu_s(), time.monotonic() - started, time.process_time()
    measured.wait()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    publishes = sum(counts)
    if publishes == 0:
        raise RuntimeError(f"no publish was acknowledged in {seconds} s")
    publishing = {thread.native_id for thread in pool}
    by_kind = {"publishing_threads": 0.0, "librdkafka_threads": 0.0, "other_python_threads": 0.0}
    for tid, cpu_s in after.items():
        used = cpu_s - before.get(tid, 0.0)
        if tid in publishing:
            by_kind["publishing_threads"] += used
        elif _thread_name(tid).startswith("rdk:"):
            by_kind["librdkafka_threads"] += used
        else:  # the delivery-report thread, and the main thread, which only waits here
            by_kind["other_python_threads"] += used
    return {
        "publishes": publishes,
        "publishes_per_s": round(publishes / elapsed),
        "cpu_us_per_publish": round(1e6 * (cpu_after - cpu_before) / publishes, 1),
        **{f"{kind}_us": round(1e6 * used / publishes, 1) for kind, used in by_kind.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=1, help="messages per publish (default 1)")
    args = parser.parse_args(argv)
    kafka.ensure_topic(TOPIC, settings.EVENTS_TOPIC_PARTITIONS)
    rounds = [measure(args.threads, args.seconds, args.events) for _ in range(args.rounds)]
    summary = {"threads": args.threads, "events_per_publish": args.events, "topic": TOPIC, "rounds": rounds}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

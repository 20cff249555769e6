"""What the hostile-input tests share: bounded HTTP, storage and dead-letter checks, lag, the report.

Every request has a timeout (a hang is a failure). Accepted events are collected during a test and
checked against ClickHouse in a few batched reads at its end: each must be stored exactly once and
its payload must parse to the JSON that was sent, with string values byte for byte. Messages that
can never be processed must be in the dead-letter topic with a reason. Every test adds one row to
the '## Hostile input' section of docs/reliability.md, pass or fail.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from clickhouse_driver import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from sentinel import semconv, settings
from sentinel_local import processes
from tests.e2e.helpers import committed_offsets, group_reader
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

# (connect, read) seconds for every request: nothing a client sends may keep ingest from answering.
HTTP_TIMEOUT = (5.0, 30.0)
DRAIN_TIMEOUT_S = 180.0
DLQ_HEADER_KEYS = semconv.DLQ_HEADERS
REPORT_PATH = settings.REPO_ROOT / "docs" / "reliability.md"
REPORT_HEADING = "## Hostile input"
# Monotonic time the last accepted request was answered or the last message acknowledged by Kafka:
# drains start here.
_last_send = [0.0]


def sent_now() -> None:
    _last_send[0] = time.monotonic()


def last_send() -> float:
    return _last_send[0] or time.monotonic()


def bounded(max_examples: int) -> hypothesis_settings:
    """Hypothesis settings for live processes: a fixed number of examples, no per-example deadline
    (the network decides), and no health checks about inputs we mean to be slow or large."""
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# -- HTTP ----------------------------------------------------------------------------------------


def post(
    body: bytes,
    *,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    base_url: str | None = None,
) -> requests.Response:
    """POST raw bytes to /events with a timeout; a timeout fails the test as a hang."""
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    url = f"{base_url or settings.INGEST_URL}/events"
    try:
        response = requests.post(url, data=body, headers=sent, timeout=HTTP_TIMEOUT)
        if response.ok:
            sent_now()
        return response
    except requests.Timeout as exc:
        raise AssertionError(f"ingest did not answer within {HTTP_TIMEOUT[1]:.0f}s (hang): {body[:200]!r}") from exc


def dumps(value: Any) -> bytes:
    """JSON as a client would send it: UTF-8, exact integers of any size, no NaN."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def reason_of(response: requests.Response) -> str:
    """The reason a 4xx gives: ingest's JSON `error` (with detail/field), or the text of a server refusal."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get(k)) for k in ("error", "field", "reason", "detail") if body.get(k)]
    return ": ".join(parts)


def outcome(response: requests.Response) -> str:
    """'status error' for the report, whatever the body is."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    return f"{response.status_code} {error}" if error else str(response.status_code)


def assert_answer(response: requests.Response, allowed: Iterable[int] = (202, 400, 413)) -> None:
    """Never a 5xx; a refusal is a 4xx that says why."""
    status = response.status_code
    if status >= 500:
        time.sleep(0.2)  # let the log line land
        errors = log_excerpt(processes.get("ingest").log_path, lines=1)
        raise AssertionError(f"ingest answered {status} ({errors})\nbody: {response.text[:300]}")
    assert status in set(allowed), f"unexpected {status}: {response.text[:500]}"
    if 400 <= status < 500:
        assert reason_of(response), f"{status} without a reason: {response.text[:500]!r}"


@dataclass
class RawResponse:
    status: int
    head: str
    body: bytes


def raw_request(request: bytes, *, timeout_s: float = HTTP_TIMEOUT[1], port: int | None = None) -> RawResponse:
    """Send bytes no HTTP library would (duplicate or binary headers, odd framing) and read the answer."""
    with socket.create_connection((settings.HOST, port or settings.INGEST_PORT), timeout=HTTP_TIMEOUT[0]) as sock:
        sock.settimeout(timeout_s)
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if _complete(data):
                    break
        except TimeoutError as exc:
            raise AssertionError(f"no answer within {timeout_s:.0f}s (hang) to {request[:200]!r}") from exc
        except ConnectionResetError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    assert status_line.startswith("HTTP/"), f"no HTTP answer to {request[:200]!r}: {data[:200]!r}"
    status = int(status_line.split()[1])
    if 200 <= status < 300:
        sent_now()
    return RawResponse(status, head.decode("latin-1"), body)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


# -- what was accepted, and whether it is stored intact -------------------------------------------


@dataclass
class Accepted:
    """Events ingest accepted (or valid events produced to Kafka) and the JSON each must be stored as."""

    expected: dict[str, Any] = field(default_factory=dict)  # canonical event_id -> expected JSON
    exact: dict[str, bytes] = field(default_factory=dict)  # canonical event_id -> exact payload bytes
    trace_ids: dict[str, str] = field(default_factory=dict)  # canonical event_id -> trace id its row must carry

    def add(self, event_id: str, expected: Any, exact: bytes | None = None, trace_id: str | None = None) -> None:
        key = str(uuid.UUID(event_id))
        self.expected[key] = expected
        if exact is not None:
            self.exact[key] = exact
        if trace_id is not None:
            self.trace_ids[key] = trace_id

    def add_response(self, response: requests.Response | bytes, events: list[Any], trace_id: str | None = None) -> None:
        """Record a 202's events: each as sent, plus the event_id ingest returned for it."""
        body = json.loads(response if isinstance(response, bytes) else response.content)
        ids = body["event_ids"]
        assert body["accepted"] == len(events) == len(ids), f"accepted {body} for {len(events)} events"
        for event, event_id in zip(events, ids, strict=True):
            self.add(event_id, {**event, "event_id": event.get("event_id", event_id)}, trace_id=trace_id)

    def __len__(self) -> int:
        return len(self.expected)


def stored_client() -> Client:
    """A ClickHouse client that returns String columns as bytes, so comparisons are byte for byte."""
    return new_client(settings={"strings_as_bytes": True})


def stored_counts(client: Client, ids: list[str]) -> tuple[int, int]:
    """(distinct ids stored, rows read with FINAL) among `ids`."""
    distinct = rows = 0
    for batch in _batches(ids, 2000):
        result = client.execute(
            f"SELECT uniqExact(event_id), count() FROM {QUALIFIED_EVENTS_TABLE} FINAL"
            " WHERE event_id IN (SELECT toUUID(arrayJoin(%(ids)s)))",
            {"ids": batch},
        )
        distinct += int(result[0][0])
        rows += int(result[0][1])
    return distinct, rows


def stored_rows(client: Client, ids: list[str]) -> dict[str, tuple[bytes, bytes, bytes]]:
    """canonical event_id -> (event_type, trace_id, payload) as bytes.

    PREWHERE reads the payloads of the matching rows only: 500 random ids touch most granules, and
    WHERE read their payloads whole (1.1 s per batch against 0.19 s on a table of 1.4 million rows,
    390 MB of payloads). It is exact under FINAL because it filters on the sorting key: every version
    of an event is kept or dropped together."""
    out: dict[str, tuple[bytes, bytes, bytes]] = {}
    for batch in _batches(ids, 500):
        for event_id, event_type, trace_id, payload in client.execute(
            f"SELECT toString(event_id), event_type, trace_id, payload FROM {QUALIFIED_EVENTS_TABLE} FINAL"
            " PREWHERE event_id IN (SELECT toUUID(arrayJoin(%(ids)s)))",
            {"ids": batch},
        ):
            out[_text(event_id)] = (event_type, trace_id, payload)
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mismatch(expected: Any, actual: Any, path: str = "$") -> str | None:
    """Where two parsed JSON values differ (types strictly, strings as UTF-8 bytes), or None."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if type(expected) is type(actual) and expected == actual else f"{path}: {expected!r} != {actual!r}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: object became {type(actual).__name__}"
        if expected.keys() != actual.keys():
            return f"{path}: keys {sorted(expected.keys() ^ actual.keys())!r} differ"
        for key in expected:
            problem = mismatch(expected[key], actual[key], f"{path}.{key!r}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: array became {actual!r:.80}"
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problem = mismatch(e, a, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(expected, str):
        if not isinstance(actual, str) or expected.encode("utf-8") != actual.encode("utf-8"):
            return f"{path}: {expected!r:.80} stored as {actual!r:.80}"
        return None
    if type(expected) is not type(actual) or expected != actual:
        return f"{path}: {expected!r:.80} stored as {actual!r:.80}"
    return None


@dataclass(frozen=True)
class StorageCheck:
    lost: int
    duplicates: int
    drain_s: float
    problems: list[str]


def check_stored(accepted: Accepted, *, timeout_s: float = DRAIN_TIMEOUT_S) -> StorageCheck:
    """Wait until every accepted event is in ClickHouse, then compare payloads in batched reads.

    The drain time runs from the last send (request answered or message acknowledged) to the moment
    everything is stored and the bridge's lag is back to zero.
    """
    since = last_send()
    ids = list(accepted.expected)
    client = stored_client()
    deadline = time.monotonic() + timeout_s
    distinct = rows = 0
    while ids:
        distinct, rows = stored_counts(client, ids)
        if distinct == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    lag_zero(timeout_s=max(10.0, deadline - time.monotonic()))
    drain = time.monotonic() - since
    problems: list[str] = []
    stored = stored_rows(client, ids) if ids else {}
    for event_id in ids:
        row = stored.get(event_id)
        if row is None:
            problems.append(f"{event_id}: accepted but not stored")
            continue
        problems.extend(f"{event_id}: {p}" for p in payload_problems(accepted, event_id, row))
    client.disconnect()
    return StorageCheck(lost=len(ids) - distinct, duplicates=rows - distinct, drain_s=drain, problems=problems)


def assert_stored_intact(row: Row, accepted: Accepted) -> None:
    """Every accepted event stored once, intact; the row gets lost, duplicates and drain time."""
    check = check_stored(accepted)
    row.storage(check)
    assert not check.problems, (
        f"{len(check.problems)} accepted event(s) not stored intact, e.g. {check.problems[0]}\n{check.problems[1:5]}"
    )
    assert check.lost == 0 and check.duplicates == 0, check


def payload_problems(accepted: Accepted, event_id: str, row: tuple[bytes, bytes, bytes]) -> list[str]:
    event_type, trace_id, payload = row
    problems = []
    exact = accepted.exact.get(event_id)
    if exact is not None and payload != exact:
        problems.append(f"payload differs from the bytes in Kafka: {payload[:120]!r} vs {exact[:120]!r}")
    try:
        stored = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [*problems, f"stored payload does not parse: {exc}: {payload[:120]!r}"]
    expected = accepted.expected[event_id]
    problem = mismatch(expected, stored)
    if problem:
        problems.append(problem)
    if isinstance(expected, dict) and event_type != str(expected.get("type")).encode("utf-8"):
        problems.append(f"event_type column {event_type[:80]!r} != type {expected.get('type')!r:.80}")
    if len(trace_id) != 32 or any(c not in b"0123456789abcdef" for c in trace_id):
        problems.append(f"trace_id {trace_id!r} is not 32 lowercase hex digits")
    wanted = accepted.trace_ids.get(event_id)
    if wanted is not None and trace_id != wanted.encode():
        problems.append(f"trace_id {trace_id!r} is not the caller's {wanted}")
    return problems


def stored_at(
    client: Client, positions: Iterable[tuple[int, int]], since: datetime
) -> dict[tuple[int, int], tuple[str, bytes, bytes, bytes]]:
    """Rows by their (partition, offset) in mcp.events, received since `since` (UTC):
    -> (event_id, event_type, trace_id, payload)."""
    out: dict[tuple[int, int], tuple[str, bytes, bytes, bytes]] = {}
    positions = sorted(set(positions))
    for start in range(0, len(positions), 500):
        pairs = ", ".join(f"({int(p)}, {int(o)})" for p, o in positions[start : start + 500])
        for partition, offset, event_id, event_type, trace_id, payload in client.execute(
            "SELECT kafka_partition, kafka_offset, toString(event_id), event_type, trace_id, payload"
            f" FROM {QUALIFIED_EVENTS_TABLE} FINAL WHERE kafka_topic = %(topic)s AND received_at >= %(since)s"
            f" AND (kafka_partition, kafka_offset) IN ({pairs})",
            {"topic": settings.EVENTS_TOPIC, "since": since.replace(tzinfo=None)},
        ):
            out[(int(partition), int(offset))] = (_text(event_id), event_type, trace_id, payload)
    return out


def assert_no_leaks(ids: Iterable[str]) -> None:
    """Events of refused requests must not be stored (ingest publishes nothing on a 4xx)."""
    ids = [str(uuid.UUID(i)) for i in ids]
    if ids:
        client = stored_client()
        distinct, _ = stored_counts(client, ids)
        client.disconnect()
        assert distinct == 0, f"{distinct} event(s) of refused requests were stored"


# -- Kafka: produce, dead letters, lag ---------------------------------------------------------------


def producer() -> Producer:
    return Producer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "message.max.bytes": 16 * 1024 * 1024,
            "linger.ms": 5,
            "enable.idempotence": True,
        }
    )


def produce(
    producer_: Producer,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | None,
    *,
    key: bytes | None = None,
    partition: int | None = None,
) -> tuple[int, int]:
    """Produce one message and wait for Kafka's acknowledgement; returns (partition, offset)."""
    delivered: list[tuple[Any, int, int]] = []
    kwargs: dict[str, Any] = {
        "value": value,
        "key": key,
        "on_delivery": lambda e, m: delivered.append((e, m.partition(), m.offset())),
    }
    if headers is not None:
        kwargs["headers"] = headers
    if partition is not None:
        kwargs["partition"] = partition
    producer_.produce(settings.EVENTS_TOPIC, **kwargs)
    assert producer_.flush(30) == 0, "Kafka did not acknowledge a produced message within 30s"
    sent_now()
    error, part, offset = delivered[0]
    assert error is None, f"produce failed: {error}"
    return part, offset


def max_message_bytes(topic: str = settings.EVENTS_TOPIC) -> int:
    """The largest record batch the broker takes for `topic` (its max.message.bytes)."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    return int(configs["max.message.bytes"].value)


def dlq_end_offsets() -> dict[int, int]:
    """High watermark of each dead-letter partition: where a test's dead letters will start."""
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP, "group.id": "security-dlq-probe"})
    try:
        topic = consumer.list_topics(settings.DLQ_TOPIC, timeout=10).topics[settings.DLQ_TOPIC]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(settings.DLQ_TOPIC, p), timeout=10, cached=False)[1]
            for p in topic.partitions
        }
    finally:
        consumer.close()


@dataclass(frozen=True)
class DeadLetterRecord:
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes | None]]

    def header(self, key: str) -> bytes | None:
        return next((v for k, v in self.headers if k == key), None)

    @property
    def reason(self) -> str:
        return (self.header(semconv.HEADER_DLQ_REASON) or b"").decode("utf-8", "replace")

    @property
    def original_headers(self) -> list[tuple[str, bytes | None]]:
        return [(k, v) for k, v in self.headers if k not in DLQ_HEADER_KEYS]


def read_dead_letters(
    start: dict[int, int], wanted: set[tuple[int, int]], *, timeout_s: float = DRAIN_TIMEOUT_S
) -> dict[tuple[int, int], list[DeadLetterRecord]]:
    """Dead letters written since `start`, keyed by their source (partition, offset) in mcp.events;
    reads until every `wanted` source is there (or the timeout) and then to the end of the topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": f"security-dlq-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 16 * 1024 * 1024,
        }
    )
    consumer.assign([TopicPartition(settings.DLQ_TOPIC, p, o) for p, o in start.items()])
    found: dict[tuple[int, int], list[DeadLetterRecord]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(500, 0.5)
            for message in messages:
                if message.error():
                    continue
                record = DeadLetterRecord(message.value(), message.key(), list(message.headers() or []))
                if record.header(semconv.HEADER_DLQ_SOURCE_TOPIC) != settings.EVENTS_TOPIC.encode():
                    continue
                source = (
                    int(record.header(semconv.HEADER_DLQ_SOURCE_PARTITION) or -1),
                    int(record.header(semconv.HEADER_DLQ_SOURCE_OFFSET) or -1),
                )
                found.setdefault(source, []).append(record)
            if wanted <= found.keys() and not messages:
                break
    finally:
        consumer.close()
    return found


def lag_zero(*, timeout_s: float = DRAIN_TIMEOUT_S) -> float:
    """Wait until the bridge group's committed offset equals the high watermark of every partition of
    mcp.events; returns the seconds it took. Fails after the timeout, naming the lag per partition."""
    started = time.monotonic()
    reader = group_reader()
    try:
        partitions = range(settings.EVENTS_TOPIC_PARTITIONS)
        lag: dict[int, int] = {}
        while True:
            committed = committed_offsets(reader)
            lag = {}
            for p in partitions:
                low, high = reader.get_watermark_offsets(
                    TopicPartition(settings.EVENTS_TOPIC, p), timeout=10, cached=False
                )
                position = committed.get(p, -1001)
                lag[p] = high - (position if position >= 0 else low)
            if not any(lag.values()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                alive = processes.get("bridge").pid() is not None
                raise AssertionError(
                    f"consumer lag did not return to zero within {timeout_s:.0f}s: {lag}"
                    f" (bridge {'running' if alive else 'NOT running'})"
                )
            time.sleep(0.25)
    finally:
        reader.close()


def bridge_running() -> bool:
    return processes.get("bridge").pid() is not None


def revive_bridge(poison: Iterable[tuple[int, int]]) -> str:
    """If a hostile message killed the bridge, step over it and start the bridge again, so the
    tests after this one (and other suites on this stack) find a working pipeline.

    Only offsets the bridge is stuck on exactly are skipped; returns what was done.
    """
    bridge = processes.get("bridge")
    if bridge.pid() is not None:
        return "bridge running"
    reader = group_reader()
    skipped = []
    try:
        committed = committed_offsets(reader)
        for partition, offset in poison:
            if committed.get(partition) == offset:
                for _ in range(30):  # the dead member may still hold the group until its session ends
                    try:
                        reader.commit(
                            offsets=[TopicPartition(settings.EVENTS_TOPIC, partition, offset + 1)], asynchronous=False
                        )
                        break
                    except Exception:  # noqa: BLE001 - retried until the group is empty
                        time.sleep(1)
                skipped.append((partition, offset))
    finally:
        reader.close()
    bridge.up()
    return f"bridge had died; restarted it (skipped {skipped or 'nothing'})"


def log_excerpt(path: Path, needle: str = "", lines: int = 6) -> str:
    """The last lines of a process log that mention `needle` (default: errors), for failure messages;
    a JSON log line is shortened to its message and the last line of its exception."""
    if not path.exists():
        return ""
    text = path.read_text("utf-8", "replace").splitlines()
    hits = [line for line in text if (needle in line if needle else '"level":"error"' in line or "Error" in line)]
    out = []
    for line in hits[-lines:]:
        try:
            entry = json.loads(line)
            exc = (entry.get("exc") or "").strip().splitlines()
            line = f"{entry.get('level')} {entry.get('msg')}" + (f" -> {exc[-1]}" if exc else "")
        except (ValueError, AttributeError):
            pass
        out.append(line[:400])
    return "\n".join(out)


# -- the report ---------------------------------------------------------------------------------------


@dataclass
class Row:
    input_class: str
    events: int = 0
    lost: int | None = None
    duplicates: int | None = None
    drain_s: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    result: str = ""

    def saw(self, outcome: str, count: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count

    def storage(self, check: StorageCheck) -> None:
        self.lost = (self.lost or 0) + check.lost
        self.duplicates = (self.duplicates or 0) + check.duplicates
        self.drain_s = max(self.drain_s or 0.0, check.drain_s)

    def cells(self) -> list[str]:
        outcomes = ", ".join(f"{k} x{v}" for k, v in sorted(self.outcomes.items(), key=lambda kv: -kv[1]))
        return [
            self.input_class,
            str(self.events),
            "-" if self.lost is None else str(self.lost),
            "-" if self.duplicates is None else str(self.duplicates),
            "-" if self.drain_s is None else f"{self.drain_s:.1f} s",
            f"{self.result}{' (' + outcomes + ')' if outcomes else ''}",
        ]


ROWS: list[Row] = []


@contextmanager
def record(input_class: str) -> Iterator[Row]:
    """One report row per test: 'pass', or 'FAIL' with the first line of what went wrong."""
    row = Row(input_class)
    try:
        yield row
    except BaseException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        notes = [n for n in getattr(exc, "__notes__", []) if n.startswith(("Falsifying example", "Failing test case"))]
        lines = notes[0].split(":", 1)[1].splitlines() if notes else []
        example = " ".join(line.split("#", 1)[0].strip() for line in lines).replace("check(", "").strip(" ,)")
        example = f"input: {example}" if example else ""
        row.result = f"**FAIL**: {first[:200]}" + (f"; {example[:160]}" if example else "")
        raise
    else:
        row.result = row.result or "pass"
    finally:
        ROWS.append(row)


def render_section(rows: list[Row]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        REPORT_HEADING,
        "",
        f"Written by the session fixture of `tests/security` (last run {when}, {len(rows)} input classes).",
        "Each class is sent to the running pipeline (ingest over HTTP, or produced straight to `mcp.events`).",
        "*events*: events or messages sent; *lost*: accepted (202) or produced messages found neither in",
        "ClickHouse nor in `mcp.events.dlq`; *duplicates*: rows (read with FINAL) or dead letters beyond one",
        "per event; *drain time*: from the last send until everything is stored or dead-lettered and the",
        "bridge's committed offsets equal the high watermarks; '-': nothing reached Kafka.",
        "",
        "| input class | events | lost | duplicates | drain time | result |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row.cells()) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows: list[Row], path: Path = REPORT_PATH) -> None:
    """Replace only the '## Hostile input' section of the file (create it if missing); keep the rest,
    which another suite writes, as it is. Read and replaced at once to keep the race window small."""
    if not rows:
        return
    section = render_section(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text("utf-8") if path.exists() else "# Reliability\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == REPORT_HEADING), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(new, "utf-8")
    os.replace(temporary, path)

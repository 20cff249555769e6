"""Messages produced straight to `mcp.events`, past ingest: whatever the value and headers, a message
is stored intact or lands in `mcp.events.dlq` with its reason, and the bridge's lag returns to zero."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel import semconv
from sentinel_local import processes
from tests.security import strategies as hst
from tests.security.helpers import (
    DLQ_HEADER_KEYS,
    Accepted,
    DeadLetterRecord,
    Row,
    assert_stored_intact,
    bounded,
    bridge_running,
    dlq_end_offsets,
    dumps,
    lag_zero,
    last_send,
    log_excerpt,
    max_message_bytes,
    mismatch,
    produce,
    producer,
    read_dead_letters,
    record,
    revive_bridge,
    stored_at,
    stored_client,
)

pytestmark = [pytest.mark.security, pytest.mark.usefixtures("pipeline")]

Headers = list[tuple[str, bytes | None]] | None

header_keys = st.one_of(
    st.sampled_from(
        [
            semconv.HEADER_TRACEPARENT,
            semconv.HEADER_TRACESTATE,
            semconv.HEADER_BAGGAGE,
            semconv.HEADER_EVENT_ID,
            semconv.HEADER_DLQ_REASON,
            semconv.HEADER_DLQ_SOURCE_OFFSET,
            "",
        ]
    ),
    # librdkafka keeps header keys as C strings: a NUL would cut the key in the producer already.
    hst.any_text.filter(lambda k: "\x00" not in k),
)
header_values = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.sampled_from([b"00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01", b"\xff\xfe", b"\x00" * 50, b"garbage"]),
)
kafka_headers = st.one_of(
    st.none(),
    st.just([]),
    st.lists(st.tuples(header_keys, header_values), max_size=12),
    st.integers(100_000, 1_000_000).map(lambda n: [(semconv.HEADER_TRACEPARENT, b"f" * n), ("x-big", b"\xff" * 1000)]),
    st.integers(500, 3000).map(lambda n: [(f"h{i}", b"v") for i in range(n)]),
)

# (value, a word the dead letter's reason must contain, or "" when any reason will do)
invalid_values = st.one_of(
    st.just((None, "")),
    st.just((b"", "")),
    st.binary(min_size=1, max_size=300).filter(lambda b: not _utf8(b)).map(lambda b: (b, "utf-8")),
    st.text(min_size=1, max_size=300).filter(lambda t: not _json(t)).map(lambda t: (t.encode(), "json")),
    hst.json_scalars.map(lambda v: (dumps(v), "")),
    st.lists(hst.json_values, max_size=3).map(lambda v: (dumps(v), "")),
    hst.events().map(lambda e: (dumps({k: v for k, v in e.items() if k != "type"}), "type")),
    hst.wrong_fields.map(lambda fv: (dumps({"type": "kafka", fv[0]: fv[1]}), fv[0])),
    st.integers(1025, 3000).map(lambda d: (b'{"type":"too deep","d":' + b"[" * d + b"]" * d + b"}", "json")),
    st.sampled_from([b'{"type":"\\ud800"}', b'{"type":"x",}', b"\xef\xbb\xbf{}", b'{"type":"x","n":NaN}']).map(
        lambda b: (b, "json")
    ),
)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _fresh_ids(headers: Headers) -> Headers:
    # A valid UUID in an event_id header becomes the event's id: make each unique across examples.
    if headers is None:
        return None
    return [
        (k, str(uuid.uuid4()).encode()) if k == semconv.HEADER_EVENT_ID and hst.is_uuid(_text(v)) else (k, v)
        for k, v in headers
    ]


def _text(value: bytes | None) -> str | None:
    try:
        return value.decode() if value is not None else None
    except UnicodeDecodeError:
        return None


def _check_dead_letters(
    row: Row, start: dict[int, int], sent: dict[tuple[int, int], tuple[bytes | None, bytes | None, Headers, str]]
) -> list[str]:
    """Each sent message dead-lettered exactly once, value, key and headers as sent, with a reason."""
    letters = read_dead_letters(start, set(sent))
    problems = []
    row.lost = (row.lost or 0) + len(set(sent) - letters.keys())
    row.duplicates = (row.duplicates or 0) + sum(len(v) - 1 for k, v in letters.items() if k in sent)
    for position, (value, key, headers, word) in sent.items():
        found = letters.get(position)
        if not found:
            problems.append(f"{position}: not in the dead-letter topic")
            continue
        letter: DeadLetterRecord = found[0]
        reason = letter.reason
        row.saw(f"dlq: {reason.split(':', 1)[0][:40]}")
        if not reason:
            problems.append(f"{position}: dead letter without a reason")
        elif word and word not in reason.lower():
            problems.append(f"{position}: reason {reason!r:.120} does not mention {word!r}")
        if letter.value != value:
            problems.append(f"{position}: value changed: {letter.value!r:.80} vs {value!r:.80}")
        if letter.key != key:
            problems.append(f"{position}: key changed: {letter.key!r:.80} vs {key!r:.80}")
        sent_headers = [(k, b"" if v is None else v) for k, v in headers or [] if k not in DLQ_HEADER_KEYS]
        kept = [(k, b"" if v is None else v) for k, v in letter.original_headers]
        if kept != sent_headers:
            problems.append(f"{position}: original headers not kept: {kept!r:.160} vs {sent_headers!r:.160}")
        if [k for k, _ in letter.headers].count(semconv.HEADER_DLQ_REASON) != 1:
            problems.append(f"{position}: {semconv.HEADER_DLQ_REASON} is not there exactly once")
    return problems


def _drain(row: Row) -> None:
    lag_zero()
    row.drain_s = max(row.drain_s or 0.0, time.monotonic() - last_send())


def test_invalid_messages_are_dead_lettered_with_their_reason() -> None:
    with record("Kafka: not JSON, wrong schema, missing/garbage/giant headers") as row:
        start = dlq_end_offsets()
        kafka = producer()
        sent: dict[tuple[int, int], tuple[bytes | None, bytes | None, Headers, str]] = {}

        @bounded(100)
        @given(value=invalid_values, headers=kafka_headers, key=st.none() | st.binary(max_size=40))
        def check(value: tuple[bytes | None, str], headers: Headers, key: bytes | None) -> None:
            position = produce(kafka, value[0], headers, key=key)
            row.events += 1
            sent[position] = (value[0], key, headers, value[1])

        check()
        problems = _check_dead_letters(row, start, sent)
        _drain(row)
        assert bridge_running(), f"the bridge died:\n{log_excerpt(_bridge_log())}"
        assert not problems, f"{len(problems)} problem(s): {problems[:6]}"
        assert row.lost == 0 and row.duplicates == 0


def _bridge_log():

    return processes.get("bridge").log_path


def _check_stored_by_position(
    row: Row, since: datetime, sent: dict[tuple[int, int], tuple[bytes, dict[str, Any], str | None]]
) -> list[str]:
    """Messages without an event_id are found by (partition, offset); each must hold the event as
    sent plus an assigned UUID event_id."""
    client = stored_client()
    deadline = time.monotonic() + 120
    rows: dict[tuple[int, int], tuple[str, bytes, bytes, bytes]] = {}
    while time.monotonic() < deadline:
        rows = stored_at(client, sent, since)
        if len(rows) == len(sent):
            break
        time.sleep(0.25)
    client.disconnect()
    problems = []
    row.lost = (row.lost or 0) + len(sent) - len(rows)
    for position, (_value, event, header_id) in sent.items():
        found = rows.get(position)
        if found is None:
            problems.append(f"{position}: valid message without event_id neither stored nor dead-lettered")
            continue
        event_id, event_type, _trace_id, payload = found
        stored = json.loads(payload)
        assigned = stored.pop("event_id", None)
        if not hst.is_uuid(assigned) or str(uuid.UUID(assigned)) != event_id:
            problems.append(f"{position}: assigned event_id {assigned!r} does not match the row's {event_id}")
        if header_id is not None and event_id != str(uuid.UUID(header_id)):
            problems.append(f"{position}: the event_id header {header_id} was not used")
        problem = mismatch(event, stored)
        if problem:
            problems.append(f"{position}: {problem}")
        if event_type != event["type"].encode():
            problems.append(f"{position}: event_type {event_type!r:.60}")
    return problems


def test_valid_messages_with_hostile_headers_are_stored() -> None:
    """A bad header is no reason to drop an event: with or without an event_id, any headers."""
    with record("Kafka: valid events under missing/garbage/giant headers") as row:
        since = datetime.now(UTC) - timedelta(seconds=5)
        start = dlq_end_offsets()
        kafka = producer()
        accepted = Accepted()
        without_id: dict[tuple[int, int], tuple[bytes, dict[str, Any], str | None]] = {}

        @bounded(60)
        @given(event=hst.events(), with_id=st.booleans(), headers=kafka_headers)
        def check(event: dict[str, Any], with_id: bool, headers: Headers) -> None:
            headers = _fresh_ids(headers)
            event = {k: v for k, v in event.items() if k != "event_id"}
            if with_id:
                event["event_id"] = str(uuid.uuid4())
            value = dumps(event)
            position = produce(kafka, value, headers)
            row.events += 1
            if with_id:
                accepted.add(event["event_id"], event, exact=value)
            else:
                # Which of several event_id headers wins is not specified; one valid one must be used.
                ids = [_text(v) for k, v in headers or [] if k == semconv.HEADER_EVENT_ID]
                header_id = ids[0] if len(ids) == 1 and hst.is_uuid(ids[0]) else None
                without_id[position] = (value, event, header_id)

        check()
        problems = _check_stored_by_position(row, since, without_id)
        assert_stored_intact(row, accepted)
        letters = read_dead_letters(start, set(), timeout_s=2)
        wrongly = [p for p in letters if p in without_id]
        row.saw("stored", row.events - len(wrongly))
        assert bridge_running(), f"the bridge died:\n{log_excerpt(_bridge_log())}"
        assert not problems, f"{len(problems)} problem(s): {problems[:6]}"
        assert not wrongly, f"valid events dead-lettered: {[letters[p][0].reason for p in wrongly][:3]}"


def test_values_near_the_size_limit() -> None:
    """Messages just under the broker's limit, valid and invalid, several in one partition at once
    (one chunk of many megabytes), plus one whose size is nearly all headers."""
    limit = max_message_bytes()
    size = limit - 8192
    with record(f"Kafka: values near the {limit / 2**20:.0f} MiB message limit") as row:
        start = dlq_end_offsets()
        kafka = producer()
        accepted = Accepted()
        dead: dict[tuple[int, int], tuple[bytes | None, bytes | None, Headers, str]] = {}
        key = uuid.uuid4().bytes  # one key: one partition, so the large events share chunks

        def padded(event: dict[str, Any]) -> bytes:
            head = dumps({**event, "pad": ""})
            return dumps({**event, "pad": "p" * (size - len(head))})

        for _ in range(3):
            event_id = str(uuid.uuid4())
            value = padded({"type": "near-limit", "event_id": event_id})
            produce(kafka, value, [(semconv.HEADER_EVENT_ID, event_id.encode())], key=key)
            accepted.add(event_id, json.loads(value), exact=value)
        for value, word in (
            (padded({"kind": "no type"}), "type"),
            (b"\xff" + padded({"type": "x"})[1:], "utf-8"),
            (padded({"type": "x"})[:-1], "json"),
        ):
            dead[produce(kafka, value, None, key=key)] = (value, key, None, word)
        # Nearly all of the message is headers.
        event_id = str(uuid.uuid4())
        small = dumps({"type": "near-limit-headers", "event_id": event_id})
        giant = [(semconv.HEADER_TRACESTATE, b"k=" + b"v" * (size - 1024)), ("x-small", b"1")]
        produce(kafka, small, giant, key=key)
        accepted.add(event_id, json.loads(small), exact=small)
        bad = b'{"no":"type"}'
        dead[produce(kafka, bad, giant, key=key)] = (bad, key, giant, "type")
        row.events = len(accepted) + len(dead)

        problems = _check_dead_letters(row, start, dead)
        assert_stored_intact(row, accepted)
        row.saw("stored", len(accepted))
        assert bridge_running(), f"the bridge died:\n{log_excerpt(_bridge_log())}"
        assert not problems, f"{len(problems)} problem(s): {problems[:6]}"


def test_a_deeply_nested_event_without_an_id_does_not_stop_the_bridge() -> None:
    """An event without event_id is re-serialised with the id the bridge assigns; JSON nested deeper
    than the serialiser writes (orjson: 254 levels, though it reads 1,024) must be stored or
    dead-lettered like any other message, and the bridge must keep going."""
    with record("Kafka: 300-level nesting, no event_id (re-serialised by the bridge)") as row:
        lag_zero()
        since = datetime.now(UTC) - timedelta(seconds=5)
        start = dlq_end_offsets()
        kafka = producer()
        key = uuid.uuid4().bytes
        deep = b'{"type":"deep-no-id","d":' + b"[" * 300 + b"]" * 300 + b"}"
        poison = produce(kafka, deep, None, key=key)
        after_id = str(uuid.uuid4())
        after = dumps({"type": "after-deep", "event_id": after_id})
        produce(kafka, after, None, key=key)
        row.events = 2
        try:
            accepted = Accepted()
            accepted.add(after_id, json.loads(after), exact=after)
            client = stored_client()
            deadline = time.monotonic() + 30
            stored: dict[Any, Any] = {}
            letters: dict[Any, Any] = {}
            while time.monotonic() < deadline:
                stored = stored_at(client, [poison], since)
                letters = {p: v for p, v in read_dead_letters(start, {poison}, timeout_s=1).items() if p == poison}
                if stored or letters or not bridge_running():
                    break
            client.disconnect()
            alive = bridge_running()
            row.lost = 0 if stored or letters else 1
            row.saw("stored" if stored else "dead-lettered" if letters else "neither stored nor dead-lettered")
            if not alive:
                row.saw("bridge died")
            assert alive, f"the bridge died on the message at {poison}: {log_excerpt(_bridge_log(), 'Error', lines=1)}"
            assert stored or letters, f"the message at {poison} was neither stored nor dead-lettered"
            assert_stored_intact(row, accepted)
        finally:
            if not bridge_running():
                row.saw(revive_bridge([poison]))

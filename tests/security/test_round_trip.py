"""SQL-looking, control-character and multi-byte values in every field of an event, over HTTP and
straight through Kafka: each is stored and read back byte for byte (no SQL is built from content)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.security import strategies as hst
from tests.security.helpers import (
    Accepted,
    assert_answer,
    assert_stored_intact,
    bounded,
    dumps,
    outcome,
    post,
    produce,
    producer,
    record,
    stored_client,
)
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

pytestmark = [pytest.mark.security, pytest.mark.usefixtures("pipeline")]


def everywhere(value: str) -> dict[str, Any]:
    """An event carrying `value` in every string field, as keys and values, at several depths."""
    kind = value if value.strip() else f"t{value}"
    return {
        "type": kind[: hst.MAX_TYPE_LENGTH],
        "event_id": str(uuid.uuid4()),
        "timestamp": "2024-02-29T23:59:59.999999+14:00",
        **{name: value[: hst.MAX_ID_LENGTH] for name in hst.OPTIONAL_STRINGS},
        "duration_ms": 0.5,
        "attributes": {value: value, "nested": [value, {value: [value, {"k": value}]}], "sql": value},
        f"x-{value}": value,
    }


def _table_rows() -> int:
    client = stored_client()
    try:
        return int(client.execute(f"SELECT count() FROM {QUALIFIED_EVENTS_TABLE}")[0][0])
    finally:
        client.disconnect()


def test_hostile_values_in_every_field_round_trip_over_http() -> None:
    with record("SQL-looking, control and multi-byte values in every field (HTTP)") as row:
        rows_before = _table_rows()
        accepted = Accepted()
        corpus = [everywhere(v) for v in hst.HOSTILE_STRINGS]
        response = post(dumps(corpus))
        row.events += len(corpus)
        row.saw(outcome(response), len(corpus))
        assert_answer(response, allowed=(202,))
        accepted.add_response(response, corpus)
        ndjson = [everywhere(v) for v in hst.HOSTILE_STRINGS]
        response = post(b"\n".join(dumps(e) for e in ndjson), content_type="application/x-ndjson")
        row.events += len(ndjson)
        row.saw(outcome(response), len(ndjson))
        assert_answer(response, allowed=(202,))
        accepted.add_response(response, ndjson)

        @bounded(60)
        @given(parts=st.lists(hst.hostile_text, min_size=1, max_size=4))
        def check(parts: list[str]) -> None:
            event = everywhere("".join(parts))
            response = post(dumps(event))
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(202,))
            accepted.add_response(response, [event])

        check()
        assert_stored_intact(row, accepted)
        # Nothing in the content ran as SQL: the table is there and only grew.
        assert _table_rows() >= rows_before + len(accepted)


def test_hostile_values_in_every_field_round_trip_through_kafka() -> None:
    """Past ingest, the bridge keeps the message text as it was: the payload is the produced bytes."""
    with record("SQL-looking, control and multi-byte values in every field (Kafka)") as row:
        kafka = producer()
        accepted = Accepted()
        for value in hst.HOSTILE_STRINGS:
            event = everywhere(value)
            data = dumps(event)
            produce(kafka, data, [("traceparent", value.encode("utf-8", "surrogatepass")[:200])])
            accepted.add(event["event_id"], event, exact=data)
            row.events += 1

        @bounded(40)
        @given(parts=st.lists(hst.hostile_text, min_size=1, max_size=4), escaped=st.booleans())
        def check(parts: list[str], escaped: bool) -> None:
            event = everywhere("".join(parts))
            # Both spellings JSON allows: raw UTF-8, and \\u escapes (incl. surrogate pairs).
            data = json.dumps(event, ensure_ascii=escaped, separators=(",", ":")).encode()
            produce(kafka, data, None)
            accepted.add(event["event_id"], event, exact=data)
            row.events += 1

        check()
        row.saw("stored", len(accepted))
        assert_stored_intact(row, accepted)

"""POST /events with malformed or oversized traceparent, tracestate and baggage headers: a bad trace
header starts a new trace, it never costs the event; a header too large for the server is a 4xx."""

from __future__ import annotations

import random
import uuid

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
    raw_request,
    record,
)

pytestmark = [pytest.mark.security, pytest.mark.usefixtures("pipeline")]


def test_malformed_trace_headers_never_cost_the_event() -> None:
    with record("malformed traceparent / tracestate / baggage (fuzzed)") as row:
        accepted = Accepted()

        @bounded(100)
        @given(
            traceparent=st.none() | hst.traceparents(),
            tracestate=st.none() | hst.tracestates,
            baggage=st.none() | hst.baggages,
        )
        def check(traceparent: tuple[str, str | None] | None, tracestate: str | None, baggage: str | None) -> None:
            headers = {}
            if traceparent is not None:
                headers["traceparent"] = traceparent[0]
            if tracestate is not None:
                headers["tracestate"] = tracestate
            if baggage is not None:
                headers["baggage"] = baggage
            event = {"type": "trace-headers", "event_id": str(uuid.uuid4()), "headers": headers}
            response = post(dumps(event), headers=headers)
            row.events += 1
            row.saw(outcome(response))
            # Every generated header fits the server's header limits: none is a reason to refuse.
            assert_answer(response, allowed=(202,))
            accepted.add_response(response, [event], trace_id=traceparent[1] if traceparent else None)

        check()
        assert_stored_intact(row, accepted)


def _request(headers: list[bytes], event: dict[str, object]) -> bytes:
    body = dumps(event)
    head = [
        b"POST /events HTTP/1.1",
        b"Host: ingest",
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
        *headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def test_oversized_repeated_and_binary_trace_headers() -> None:
    """Headers no HTTP library sends: each case is a 4xx with a reason, or 202 and stored intact."""
    trace_id = f"{random.getrandbits(128):032x}"
    valid = f"00-{trace_id}-{random.getrandbits(64):016x}-01".encode()
    cases: dict[str, list[bytes]] = {
        "64 KB traceparent": [b"traceparent: 00-" + b"a" * 65536 + b"-01"],
        "64 KB tracestate": [b"tracestate: k=" + b"v" * 65536],
        "64 KB baggage": [b"baggage: k=" + b"v" * 65536],
        "8,000-byte baggage": [b"baggage: " + b",".join(b"k%d=%d" % (i, i) for i in range(1000))[:8000]],
        "200 baggage lines": [b"baggage: k%d=v" % i for i in range(200)],
        "60 traceparent lines, valid first": [b"traceparent: " + valid]
        + [b"traceparent: garbage-%d" % i for i in range(59)],
        "60 traceparent lines, garbage first": [b"traceparent: garbage-%d" % i for i in range(59)]
        + [b"traceparent: " + valid],
        "invalid UTF-8 in every trace header": [
            b"traceparent: 00-\xff\xfe-\xc0\xaf-01",
            b"tracestate: k=\xff\xff",
            b"baggage: k=\xed\xa0\x80",
        ],
        "NUL in traceparent": [b"traceparent: 00-" + trace_id.encode() + b"\x00-0000000000000001-01"],
        "folded traceparent (obs-fold)": [b"traceparent: 00-" + trace_id.encode() + b"\r\n -0000000000000001-01"],
        "space before colon": [b"traceparent : " + valid],
        "empty trace headers": [b"traceparent:", b"tracestate:", b"baggage:"],
        "33 tracestate members": [b"tracestate: " + b",".join(b"k%d=v" % i for i in range(33))],
        "baggage with 500 properties": [b"baggage: k=v;" + b";".join(b"p%d" % i for i in range(500))],
    }
    with record("oversized, repeated, binary trace headers (raw HTTP)") as row:
        accepted = Accepted()
        for name, headers in cases.items():
            event = {"type": "raw-trace-headers", "event_id": str(uuid.uuid4()), "case": name}
            answer = raw_request(_request(headers, event))
            row.events += 1
            row.saw(f"{answer.status}")
            assert answer.status < 500, f"{name}: {answer.status} {answer.body[:300]!r}"
            assert answer.status in (202, 400, 431), f"{name}: {answer.status} {answer.body[:300]!r}"
            if answer.status == 202:
                accepted.add_response(answer.body, [event])
            else:
                assert answer.body.strip(), f"{name}: {answer.status} without a reason"
        assert_stored_intact(row, accepted)


def test_many_events_under_maximal_trace_headers() -> None:
    """Every message of a request carries the trace headers: 2,000 events under 7 KB of tracestate and
    baggage put 28 MB of headers into Kafka; all must arrive."""
    with record("2,000 events with ~7 KB trace headers each") as row:
        accepted = Accepted()
        trace_id = f"{random.getrandbits(128):032x}"
        headers = {
            "traceparent": f"00-{trace_id}-{random.getrandbits(64):016x}-01",
            "tracestate": ",".join(f"v{i}=" + "x" * 100 for i in range(32))[:3500],
            "baggage": ",".join(f"k{i}=" + "y" * 30 for i in range(100))[:3500],
        }
        events = [{"type": "heavy-headers", "i": i} for i in range(2000)]
        response = post(dumps(events), headers=headers)
        row.events = len(events)
        row.saw(outcome(response), len(events))
        assert_answer(response, allowed=(202,))
        accepted.add_response(response, events, trace_id=trace_id)
        assert_stored_intact(row, accepted)

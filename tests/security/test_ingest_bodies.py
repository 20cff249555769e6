"""POST /events with hostile bodies: each gets a 4xx with a reason, or is accepted and stored intact;
never a 500, never a hang."""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from sentinel import settings
from tests.security import strategies as hst
from tests.security.helpers import (
    HTTP_TIMEOUT,
    Accepted,
    assert_answer,
    assert_no_leaks,
    assert_stored_intact,
    bounded,
    dumps,
    outcome,
    post,
    raw_request,
    reason_of,
    record,
)

pytestmark = [pytest.mark.security, pytest.mark.usefixtures("pipeline")]

VALID = {"type": "tool_call", "tool": "search", "server": "security"}


@contextmanager
def _deep_recursion() -> Iterator[None]:
    # The oracle parses and compares deeply nested JSON recursively.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 20_000))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


malformed_bodies = st.one_of(
    st.binary(max_size=2000),
    st.tuples(hst.events(), st.floats(0, 1, exclude_max=True)).map(  # truncated
        lambda pair: dumps(pair[0])[: int(len(dumps(pair[0])) * pair[1])]
    ),
    st.tuples(hst.events(), st.sampled_from([b"}", b",", b"x", b"\x00", b"]]", b'"', b"{"])).map(
        lambda pair: dumps(pair[0]) + pair[1]
    ),
    st.binary(min_size=1, max_size=20)
    .filter(lambda b: not _utf8(b))
    .map(lambda b: b'{"type":"bad-utf8","v":"' + b + b'"}'),
    st.sampled_from(
        [
            b"{'type': 'single-quoted'}",
            b'{"type":"trailing comma",}',
            b'{"type":"comment"} // c',
            b"/* c */ {}",
            b'{"type":"nan","n":NaN}',
            b'{"type":"inf","n":Infinity}',
            b'{"type":"hex","n":0x10}',
            b'{"type":"plus","n":+1}',
            b'{"type":"leading zero","n":01}',
            b'{"type":"huge exponent","n":1e400}',
            b'{"type":"\\ud800 lone high surrogate"}',
            b'{"type":"\\udc00 lone low surrogate"}',
            b'{"type":"bad escape \\x41"}',
            b'{"type":"raw control \x01 char"}',
            b'{"type":"raw newline \n in a string"}',
            b'\xef\xbb\xbf{"type":"bom"}',
            '{"type":"utf-16"}'.encode("utf-16"),
            '{"type":"utf-32"}'.encode("utf-32"),
            '{"type":"latin-1 é"}'.encode("latin-1"),
            b'{"type":"overlong \xc0\xaf"}',
            b'{"type":"surrogate in utf-8 \xed\xa0\x80"}',
            b'{"type":"beyond U+10FFFF \xf4\x90\x80\x80"}',
            b'{"type":"a"}{"type":"b"}',
            b'{"type":"a"}\n{"type":"b"',
            b'[{"type":"a"},]',
            b"[",
            b"{",
            b'"',
            b" \t\r\n ",
            b"\x00",
            b"null",
            b"[]",
            b"{}",
            b"[[]]",
            b"true",
            b"-",
        ]
    ),
)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_malformed_json_is_refused_with_a_reason() -> None:
    with record("malformed JSON, invalid UTF-8, non-JSON encodings") as row:

        @bounded(120)
        @given(
            body=malformed_bodies,
            content_type=st.sampled_from(
                ["application/json", "application/x-ndjson", "text/plain", None, "application/json; charset=utf-16"]
            ),
        )
        def check(body: bytes, content_type: str | None) -> None:
            response = post(body, content_type=content_type)
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(400,))
            assert response.json()["error"] in ("invalid_json", "invalid_event", "no_events")

        check()


def test_wrong_types_are_refused_naming_the_field() -> None:
    with record("wrong types and out-of-range fields") as row:
        leaked: list[str] = []

        @bounded(150)
        @given(bad=hst.wrong_fields, before=st.integers(0, 3))
        def check(bad: tuple[str, Any], before: int) -> None:
            field, value = bad
            good = [{**VALID, "event_id": str(uuid.uuid4())} for _ in range(before)]
            leaked.extend(e["event_id"] for e in good)
            response = post(dumps([*good, {**VALID, field: value}]))
            row.events += before + 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(400,))
            body = response.json()
            assert body["error"] == "invalid_event" and body["field"] == field and body["index"] == before, body

        check()

        @bounded(30)
        @given(value=st.one_of(hst.json_scalars, st.lists(st.integers(), max_size=3)))
        def check_not_objects(value: Any) -> None:
            response = post(dumps([value]))
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(400,))
            assert response.json()["field"] == "$"

        check_not_objects()
        time.sleep(2)  # a leak would need the pipeline's usual second to show
        assert_no_leaks(leaked)
        row.lost = row.duplicates = 0


def test_well_formed_events_with_any_content_are_stored_intact() -> None:
    with record("valid events, arbitrary content (object, array, NDJSON)") as row:
        accepted = Accepted()

        @bounded(60)
        @given(
            events=st.lists(hst.events(), min_size=1, max_size=5),
            form=st.sampled_from(["object", "array", "ndjson", "ndjson-crlf", "ndjson-as-json"]),
        )
        def check(events: list[dict[str, Any]], form: str) -> None:
            # Fresh ids: Hypothesis repeats values across examples, and one id is one row.
            events = [{**e, "event_id": str(uuid.uuid4())} if "event_id" in e else e for e in events]
            content_type = "application/json"
            if form == "object":
                events = events[:1]
                body = dumps(events[0])
            elif form == "array":
                body = dumps(events)
            else:
                newline = b"\r\n" if form == "ndjson-crlf" else b"\n"
                body = newline.join(dumps(e) for e in events) + newline + newline
                content_type = "application/json" if form == "ndjson-as-json" else "application/x-ndjson"
                if form == "ndjson-as-json" and len(events) == 1:
                    body = dumps(events[0])
            response = post(body, content_type=content_type)
            row.events += len(events)
            row.saw(str(response.status_code), len(events))
            assert_answer(response, allowed=(202,))
            accepted.add_response(response, events)

        check()
        assert_stored_intact(row, accepted)


def test_deep_nesting_is_refused_or_stored_intact() -> None:
    """orjson reads 1024 levels but writes at most 254: anything between must not become a 500."""
    with record("deeply nested JSON (1 to 1,100 levels)") as row:
        accepted = Accepted()

        @bounded(50)
        @given(
            depth=st.integers(1, 1100),
            kind=st.sampled_from(["array", "object", "mixed"]),
            where=st.sampled_from(["attributes", "extra field"]),
        )
        def check(depth: int, kind: str, where: str) -> None:
            opening = {"array": "[", "object": '{"a":', "mixed": '[{"a":'}[kind]
            closing = {"array": "]", "object": "}", "mixed": "}]"}[kind]
            levels = depth if kind != "mixed" else max(1, depth // 2)
            nest = opening * levels + "1" + closing * levels
            value = f'{{"d":{nest}}}' if where == "attributes" else nest
            field = "attributes" if where == "attributes" else "deep"
            body = f'{{"type":"deep-{kind}","{field}":{value}}}'.encode()
            response = post(body)
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(202, 400))
            if response.status_code == 202:
                with _deep_recursion():
                    accepted.add_response(response, [json.loads(body)])

        check()
        with _deep_recursion():
            assert_stored_intact(row, accepted)


def test_huge_strings_up_to_the_event_limit() -> None:
    limit = settings.INGEST_MAX_EVENT_BYTES
    with record(f"huge strings around the {limit // 1024} KiB event limit") as row:
        accepted = Accepted()

        @bounded(14)
        @given(
            target=st.integers(limit - 3000, limit + 3000),
            char=st.sampled_from(["a", "é", "€", "😀", "\x00", '"', "\\", "\u2028"]),
            where=st.sampled_from(["attributes", "extra field", "key"]),
        )
        def check(target: int, char: str, where: str) -> None:
            event_id = str(uuid.uuid4())
            unit = len(json.dumps(char, ensure_ascii=False).encode()) - 2
            text = char * max(0, (target - 120) // unit)
            if where == "attributes":
                event = {"type": "huge", "event_id": event_id, "attributes": {"s": text}}
            elif where == "key":
                event = {"type": "huge", "event_id": event_id, text: 1}
            else:
                event = {"type": "huge", "event_id": event_id, "s": text}
            size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
            response = post(dumps(event))
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(202, 413))
            # Within a small margin of the limit, serialisers may differ by a few bytes.
            if size < limit - 64:
                assert response.status_code == 202, f"{size}-byte event refused: {response.text[:200]}"
            elif size > limit + 64:
                assert response.status_code == 413, f"{size}-byte event accepted"
            if response.status_code == 202:
                accepted.add_response(response, [event])
            else:
                assert response.json()["error"] == "event_too_large"

        check()
        assert_stored_intact(row, accepted)


def test_integers_beyond_64_bits_are_refused_or_kept_exact() -> None:
    """JSON numbers have no size limit; one that cannot be kept exactly must be refused, not rounded."""
    with record("integers beyond 64 bits") as row:
        accepted = Accepted()
        for number in (2**64, -(2**63) - 1, 10**30, -(10**40), 123456789012345678901234567890):
            event = {"type": "big-number", "attributes": {"n": number}, "n": [number]}
            response = post(dumps(event))
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(202, 400))
            if response.status_code == 202:
                accepted.add_response(response, [event])
        assert_stored_intact(row, accepted)


def test_oversized_bodies_are_refused_with_413() -> None:
    limit = settings.INGEST_MAX_BODY_BYTES
    with record(f"bodies over the {limit // (1024 * 1024)} MiB limit (Content-Length)") as row:
        leaked = []
        for size in (limit + 1, 2 * limit):
            event_id = str(uuid.uuid4())
            leaked.append(event_id)
            head = f'{{"type":"oversized","event_id":"{event_id}","pad":"'.encode()
            body = head + b"p" * (size - len(head) - 2) + b'"}'
            response = post(body)
            row.events += 1
            row.saw(outcome(response))
            assert_answer(response, allowed=(413,))
        # A declared length far beyond the limit is refused before any of the body is read.
        answer = raw_request(
            b"POST /events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000000000000\r\n\r\n{"type":"x"}'
        )
        row.events += 1
        row.saw(f"{answer.status} declared 1 TB")
        assert answer.status == 413, answer.head
        assert_no_leaks(leaked)
        row.lost = row.duplicates = 0


def test_a_chunked_body_over_the_limit_is_refused_whole() -> None:
    """Without Content-Length the limit must still refuse the body, not cut it and accept the part
    that fits: here the cut falls between two NDJSON lines, so the prefix is valid on its own."""
    limit = settings.INGEST_MAX_BODY_BYTES
    line_size = 2048
    with record("chunked body over the limit (no Content-Length)") as row:
        lines = [_line(i, line_size) for i in range(limit // line_size + 50)]
        request = (
            b"POST /events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(line), line) for line in lines)
            + b"0\r\n\r\n"
        )
        row.events = len(lines)
        answer = raw_request(request)
        try:
            accepted = int(json.loads(answer.body).get("accepted", 0))
        except (ValueError, AttributeError):
            accepted = 0
        row.saw(f"{answer.status}" + (f" accepted {accepted} of {len(lines)}" if accepted else ""))
        if answer.status == 202:
            row.lost = len(lines) - accepted
        assert answer.status == 413, (
            f"a {len(lines) * line_size:,}-byte chunked body got {answer.status}, accepting {accepted} of its"
            f" {len(lines)} events\n{answer.body[:120]!r}"
        )


def _line(index: int, size: int) -> bytes:
    base = dumps({"type": "chunked", "i": index, "pad": ""})
    return dumps({"type": "chunked", "i": index, "pad": "p" * (size - len(base) - 1)}) + b"\n"


def test_bodies_up_to_the_limit_are_stored_intact() -> None:
    """The largest body ingest takes: 20 events of nearly 500 KB each, in one 10 MB request."""
    limit = settings.INGEST_MAX_BODY_BYTES
    per_event = min(settings.INGEST_MAX_EVENT_BYTES - 1024, limit // 21)
    with record("body just under the size limit (20 large events)") as row:
        events = [{"type": "large", "i": i, "s": "ü" * ((per_event - 100) // 2)} for i in range(20)]
        body = dumps(events)
        assert len(body) <= limit
        response = post(body)
        row.events = len(events)
        row.saw(str(response.status_code), len(events))
        assert_answer(response, allowed=(202,))
        accepted = Accepted()
        accepted.add_response(response, events)
        assert_stored_intact(row, accepted)


def test_many_thousands_of_events_in_one_request() -> None:
    most = settings.INGEST_MAX_EVENTS
    with record(f"{most:,} events in one request (array and NDJSON), and one too many") as row:
        accepted = Accepted()
        events = [{"type": "bulk", "i": i, "v": hst.HOSTILE_STRINGS[i % len(hst.HOSTILE_STRINGS)]} for i in range(most)]
        response = post(dumps(events))
        row.events += len(events)
        row.saw(str(response.status_code), len(events))
        assert_answer(response, allowed=(202,))
        accepted.add_response(response, events)

        ndjson = [{"type": "bulk-ndjson", "i": i} for i in range(most // 2)]
        response = post(b"\n".join(dumps(e) for e in ndjson), content_type="application/x-ndjson")
        row.events += len(ndjson)
        row.saw(str(response.status_code), len(ndjson))
        assert_answer(response, allowed=(202,))
        accepted.add_response(response, ndjson)

        over = [{"type": "bulk-over", "event_id": str(uuid.uuid4())} for _ in range(most + 1)]
        response = post(dumps(over))
        row.events += len(over)
        row.saw(outcome(response), len(over))
        assert_answer(response, allowed=(413,))
        assert response.json()["error"] == "too_many_events"

        # Half a million tiny events in a body under the size limit: refused, promptly.
        tiny = b"[" + b",".join([b'{"type":"t"}'] * 500_000) + b"]"
        started = time.monotonic()
        response = post(tiny)
        row.events += 500_000
        row.saw(outcome(response), 500_000)
        assert_answer(response, allowed=(413,))
        assert time.monotonic() - started < HTTP_TIMEOUT[1]

        assert_stored_intact(row, accepted)
        assert_no_leaks(e["event_id"] for e in over)


def test_other_methods_and_paths_answer_4xx_in_json() -> None:
    with record("other methods and paths") as row:
        url = settings.INGEST_URL
        for method, path in (
            ("GET", "/events"),
            ("PUT", "/events"),
            ("DELETE", "/events"),
            ("PATCH", "/events"),
            ("POST", "/events/../events%00"),
            ("POST", "/%ff"),
            ("GET", "/" + "a" * 4000),
        ):
            response = requests.request(method, url + path, data=b"{}", timeout=HTTP_TIMEOUT)
            row.events += 1
            row.saw(str(response.status_code))
            assert 400 <= response.status_code < 500, f"{method} {path}: {response.status_code}"
            assert reason_of(response)


STALLED_CLIENTS = 256  # well above workers x threads of any ingest configuration here


def test_a_stalled_upload_does_not_block_other_clients() -> None:
    """A few hundred clients that announce a body and never send it (slowloris) must not stop ingest
    from answering everyone else."""
    with record(f"{STALLED_CLIENTS} stalled uploads (Content-Length announced, body never sent)") as row:
        stalled = []
        try:
            for _ in range(STALLED_CLIENTS):
                sock = socket.create_connection((settings.HOST, settings.INGEST_PORT), timeout=5)
                sock.sendall(
                    b"POST /events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{"
                )
                stalled.append(sock)
            time.sleep(1)
            started = time.monotonic()
            try:
                response = requests.post(
                    f"{settings.INGEST_URL}/events",
                    data=dumps(VALID),
                    headers={"Content-Type": "application/json"},
                    timeout=(5, 10),
                )
            except requests.Timeout:
                row.saw("no answer in 10 s")
                raise AssertionError(
                    f"with {len(stalled)} stalled uploads open, a valid POST got no answer in 10 s (hang)"
                ) from None
            row.events = 1
            row.saw(f"{response.status_code} in {time.monotonic() - started:.1f} s")
            assert_answer(response, allowed=(202,))
        finally:
            for sock in stalled:
                sock.close()

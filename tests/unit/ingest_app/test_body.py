"""ingest_app.body: a POST /events body as one object, an array or NDJSON."""

from __future__ import annotations

import pytest

from ingest_app.body import BodyError, parse_events


def test_one_object_is_one_event() -> None:
    assert parse_events(b'{"type": "a"}', "application/json") == [{"type": "a"}]


def test_an_array_is_its_elements() -> None:
    assert parse_events(b'[{"type": "a"}, {"type": "b"}]', "application/json") == [{"type": "a"}, {"type": "b"}]


def test_an_empty_array_is_no_events() -> None:
    assert parse_events(b"[]", "application/json") == []


def test_an_array_keeps_non_objects_for_validation() -> None:
    assert parse_events(b'[1, "x", null]', "application/json") == [1, "x", None]


@pytest.mark.parametrize(
    "content_type",
    ["application/x-ndjson", "application/ndjson", "application/jsonl", "Application/X-NDJSON; charset=utf-8"],
)
def test_ndjson_by_content_type(content_type: str) -> None:
    body = b'{"type": "a"}\n\n{"type": "b"}\r\n{"type": "c"}\n'
    assert parse_events(body, content_type) == [{"type": "a"}, {"type": "b"}, {"type": "c"}]


def test_single_line_ndjson_by_content_type() -> None:
    assert parse_events(b'{"type": "a"}', "application/x-ndjson") == [{"type": "a"}]


def test_ndjson_array_line_is_one_candidate_by_content_type() -> None:
    assert parse_events(b'[{"type": "a"}]\n', "application/x-ndjson") == [[{"type": "a"}]]


@pytest.mark.parametrize("content_type", ["application/json", None, "text/plain"])
def test_ndjson_is_sniffed_without_its_content_type(content_type: str | None) -> None:
    body = b'{"type": "a"}\n{"type": "b"}\n'
    assert parse_events(body, content_type) == [{"type": "a"}, {"type": "b"}]


def test_pretty_printed_json_is_not_mistaken_for_ndjson() -> None:
    body = b'{\n  "type": "a",\n  "tool": "t"\n}\n'
    assert parse_events(body, "application/json") == [{"type": "a", "tool": "t"}]


def test_invalid_json_is_refused() -> None:
    with pytest.raises(BodyError, match="invalid JSON"):
        parse_events(b'{"type": ', "application/json")


def test_invalid_json_over_several_lines_is_refused() -> None:
    with pytest.raises(BodyError, match="invalid JSON"):
        parse_events(b'{"type": "a"}\n{broken\n', "application/json")


def test_invalid_ndjson_names_the_line() -> None:
    with pytest.raises(BodyError, match="line 3"):
        parse_events(b'{"type": "a"}\n{"type": "b"}\n{broken\n', "application/x-ndjson")


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\n", b"\t\r\n"])
def test_an_empty_body_is_refused(body: bytes) -> None:
    with pytest.raises(BodyError, match="empty body"):
        parse_events(body, "application/json")


def test_an_empty_ndjson_body_is_refused() -> None:
    with pytest.raises(BodyError, match="empty body"):
        parse_events(b"\n \n", "application/x-ndjson")


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(BodyError, match="invalid JSON"):
        parse_events(b'{"type": "\xff\xfe"}', "application/json")


def test_invalid_utf8_in_ndjson_is_refused() -> None:
    with pytest.raises(BodyError, match="line 2"):
        parse_events(b'{"type": "a"}\n{"type": "\xff"}\n', "application/x-ndjson")


def test_body_error_is_a_value_error() -> None:
    assert issubclass(BodyError, ValueError)

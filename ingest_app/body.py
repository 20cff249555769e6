"""Turn a POST /events body into a list of candidate events: one object, an array, or NDJSON."""

from __future__ import annotations

from typing import Any

from sentinel.jsonvalues import JsonError, loads

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")


class BodyError(ValueError):
    """The body is not JSON we can read; the message says where and why."""


def parse_events(body: bytes, content_type: str | None) -> list[Any]:
    if not body.strip():
        raise BodyError("empty body: send a JSON object, a JSON array or NDJSON")
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in NDJSON_TYPES:
        return _ndjson(body)
    try:
        parsed = loads(body)
    except JsonError as exc:
        # NDJSON sent as application/json is common; read it as such if every line parses.
        if b"\n" in body.strip():
            try:
                return _ndjson(body)
            except BodyError:
                pass
        raise BodyError(f"invalid JSON: {exc}") from None
    if isinstance(parsed, list):
        return parsed
    return [parsed]


def _ndjson(body: bytes) -> list[Any]:
    events: list[Any] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            events.append(loads(line))
        except JsonError as exc:
            raise BodyError(f"invalid JSON on NDJSON line {number}: {exc}") from None
    if not events:
        raise BodyError("empty body: send a JSON object, a JSON array or NDJSON")
    return events

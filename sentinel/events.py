"""The audit event: what a valid one looks like, checked the same way at ingest and in the bridge.

An event is a JSON object. `type` is required; the optional fields below are checked when present;
any other field is kept as is in the stored payload. Validation returns the first problem as a
`FieldError` (field and reason) so a client is told exactly what to fix.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sentinel.jsonvalues import HugeInt

TRACEPARENT_FIELD = "traceparent"  # an event's own W3C trace context (the MCP call it audits)
TRACESTATE_FIELD = "tracestate"

MAX_TYPE_LENGTH = 256
MAX_ID_LENGTH = 1024
# Deeper than any audit event needs, and well inside what orjson can write back (254).
MAX_DEPTH = 64
_CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_OPTIONAL_STRINGS = ("session_id", "server", "method", "tool", "status")
TRACEPARENT_FIELD = "traceparent"  # an event's own W3C trace context (the MCP call it audits)
TRACESTATE_FIELD = "tracestate"


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def parse_event_id(value: Any) -> uuid.UUID | None:
    """The event id as a UUID, or None unless it is a UUID in its canonical 8-4-4-4-12 spelling
    (others, like braces or `urn:uuid:`, would come back to the client in a form ClickHouse's
    toUUID does not read)."""
    if not isinstance(value, str) or not _CANONICAL_UUID.match(value):
        return None
    return uuid.UUID(value)


def new_event_ids(count: int) -> list[str]:
    """`count` random (version 4) UUID strings from one read of the OS's random source.

    Same format and randomness as str(uuid.uuid4()); one syscall and one hex conversion per
    request instead of one per event (uuid4 was a fifth of ingest's CPU with 100-event posts).
    """
    raw = bytearray(os.urandom(16 * count))
    for i in range(0, 16 * count, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * count, 32)
    ]


def validate(event: Any, *, walk_values: bool = True) -> FieldError | None:
    """First problem with `event`, or None when it is a valid audit event.

    Runs for every event twice (ingest and bridge), so it tests exact types (`type(x) is str`:
    parsers make no subclasses, and HugeInt, a str subclass, must not pass as a string) and walks
    each value once. `walk_values=False` skips that walk (depth and HugeInt checks) for a caller
    that knows from the raw text that neither can fail (see `may_nest_too_deep`).
    """
    if type(event) is not dict:
        return FieldError("$", f"an event must be a JSON object, not {_json_type(event)}")
    kind = event.get("type")
    if kind is None:
        return FieldError("type", "required")
    if type(kind) is not str or not kind.strip():
        return FieldError("type", "must be a non-empty string")
    if len(kind) > MAX_TYPE_LENGTH:
        return FieldError("type", f"longer than {MAX_TYPE_LENGTH} characters")
    if "event_id" in event:
        event_id = event["event_id"]
        if type(event_id) is not str or not _CANONICAL_UUID.match(event_id):
            return FieldError("event_id", "must be a UUID string")
    if "timestamp" in event:
        problem = _check_timestamp(event["timestamp"])
        if problem:
            return FieldError("timestamp", problem)
    for name in _OPTIONAL_STRINGS:
        value = event.get(name)
        if value is None:
            continue
        if type(value) is not str:
            return FieldError(name, "must be a string")
        if len(value) > MAX_ID_LENGTH:
            return FieldError(name, f"longer than {MAX_ID_LENGTH} characters")
    duration = event.get("duration_ms")
    if duration is not None and (type(duration) not in (int, float) or duration < 0):
        return FieldError("duration_ms", "must be a non-negative number")
    attributes = event.get("attributes")
    if attributes is not None and type(attributes) is not dict:
        return FieldError("attributes", "must be a JSON object")
    return _check_values(event) if walk_values else None


def may_nest_too_deep(text: bytes) -> bool:
    """Whether JSON `text` can nest deeper than MAX_DEPTH: only if it holds more opening brackets
    (in strings too) than that. A byte count, far cheaper than walking the parsed value."""
    return text.count(b"{") + text.count(b"[") > MAX_DEPTH


def _check_values(event: dict[str, Any]) -> FieldError | None:
    """Walk every value (iteratively, so a hostile depth cannot exhaust the stack): refuse nesting
    deeper than MAX_DEPTH and integers outside 64 bits, naming the top-level field."""
    for field, value in event.items():
        kind = type(value)
        if kind is HugeInt:
            return FieldError(field, _HUGE)
        if kind is not dict and kind is not list:
            continue
        stack = [(value, 2)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                return FieldError(field, f"nested deeper than {MAX_DEPTH} levels")
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    stack.append((child, depth + 1))
                elif kind is HugeInt:
                    return FieldError(field, _HUGE)
    return None


_HUGE = "holds an integer outside the 64-bit range; send it as a string"


def _check_timestamp(value: Any) -> str | None:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return "must be an RFC 3339 date-time string"
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return "must be a real RFC 3339 date-time"
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, HugeInt):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__

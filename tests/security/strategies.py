"""Hypothesis strategies for hostile audit events, bodies and headers.

Generated events are Python values sent with the standard library's JSON encoder, so the expected
stored JSON is the value itself (plus the event_id ingest assigns).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from hypothesis import strategies as st

MAX_TYPE_LENGTH = 256  # DESIGN: `type` is a short string; ingest refuses longer ones
MAX_ID_LENGTH = 1024
OPTIONAL_STRINGS = ("session_id", "server", "method", "tool", "status")

# Values that break naive SQL building, escaping, logging or terminals, and multi-byte text.
HOSTILE_STRINGS = (
    "'; DROP TABLE sentinel.mcp_events; --",
    "' OR '1'='1",
    "\\'; SELECT 1; --",
    '"); DROP DATABASE sentinel; --',
    "1; TRUNCATE TABLE sentinel.mcp_events",
    "%(event_id)s",
    "%s %d %% {0} {event_id} $1 ? :name",
    "`backtick` [bracket] {brace}",
    "\\N",
    "NULL",
    "\\",
    "\\\\'\"",
    "\x00",
    "before\x00after",
    "".join(chr(c) for c in range(0x20)),
    "\x7f\x1b[31mred\x1b[0m",
    "\r\n\r\nHTTP/1.1 200 OK",
    "\t\v\f\b",
    "\u0085\u2028\u2029",
    "\ufeff",
    "\u202etxt.exe",
    "e\u0301 \u00e9",
    "\u200b\u200c\u200d\u2060",
    "👩\u200d👩\u200d👧\u200d👦",
    "\U0001d54a\U0001d556\U0001d55f\U0001d565"  # mathematical double-struck letters,
    "日本語のテキスト",
    "ﷺ العربية עברית",
    "\U0010ffff\ufffe\uffff",
    "\ufffd",
    "Z̴̡̛a̸l̶g̵o̷",
    '<script>alert("x")</script>',
    "{{7*7}} ${jndi:ldap://x/a}",
    "../../../../etc/passwd",
    "a" * 1000,
)

# Anything valid in JSON text: every code point except lone surrogates (JSON cannot carry them in UTF-8).
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
hostile_text = st.one_of(st.sampled_from(HOSTILE_STRINGS), any_text)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)),
    max_leaves=12,
)

type_names = hostile_text.filter(lambda s: s.strip() and len(s) <= MAX_TYPE_LENGTH)
optional_strings = hostile_text.filter(lambda s: len(s) <= MAX_ID_LENGTH)
rfc3339 = st.builds(
    lambda dt, sep, zone: (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}{sep}{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        + (f".{dt.microsecond:06d}" if dt.microsecond else "")
        + zone
    ),
    st.datetimes(),
    st.sampled_from(["T", "t", " "]),
    st.sampled_from(["Z", "z", "+00:00", "-05:30", "+14:00"]),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid audit event with arbitrary content: every optional field may be there, with hostile
    strings; arbitrary extra fields and attributes."""
    event: dict[str, Any] = {"type": draw(type_names)}
    if draw(st.booleans()):
        event["event_id"] = str(draw(st.uuids()))
    if draw(st.booleans()):
        event["timestamp"] = draw(rfc3339)
    for name in OPTIONAL_STRINGS:
        if draw(st.booleans()):
            event[name] = draw(st.one_of(st.none(), optional_strings))
    if draw(st.booleans()):
        event["duration_ms"] = draw(
            st.one_of(st.none(), st.integers(0, 2**63 - 1), st.floats(0, 1e300, allow_nan=False))
        )
    if draw(st.booleans()):
        event["attributes"] = draw(st.dictionaries(hostile_text, json_values, max_size=5))
    reserved = {"type", "event_id", "timestamp", "duration_ms", "attributes", *OPTIONAL_STRINGS}
    extras = draw(st.dictionaries(hostile_text.filter(lambda k: k not in reserved), json_values, max_size=4))
    return {**event, **extras}


def is_uuid(value: Any) -> bool:
    """Whether Python would read `value` as a UUID (ingest may accept such spellings)."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_TIMESTAMP_SHAPE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
non_strings = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
blank = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u1680\u2003\u2028\u3000", min_size=1, max_size=8)
impossible_times = st.sampled_from(
    [
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-01T25:00:00Z",
        "2024-01-01T00:61:00Z",
        "2024-01-01T00:00:00+25:00",
        "0000-00-00T00:00:00Z",
        "2024-01-01T00:00:00",
        "2024-01-01",
        "1700000000",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00Z\n",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00Z"  # full-width digits,
        "2024-01-01T00:00:00.1234567890Z",
    ]
)

# (field, value) pairs the event contract forbids; the 400 must name the field.
wrong_fields = st.one_of(
    st.tuples(
        st.just("type"),
        st.one_of(st.none(), non_strings, blank, st.text(min_size=MAX_TYPE_LENGTH + 1, max_size=MAX_TYPE_LENGTH + 40)),
    ),
    st.tuples(
        st.just("event_id"), st.one_of(non_strings, st.none(), st.text(max_size=70).filter(lambda s: not is_uuid(s)))
    ),
    st.tuples(
        st.just("timestamp"),
        st.one_of(
            non_strings,
            st.none(),
            impossible_times,
            st.text(max_size=40).filter(lambda s: not _TIMESTAMP_SHAPE.match(s)),
        ),
    ),
    st.tuples(
        st.sampled_from(OPTIONAL_STRINGS),
        st.one_of(non_strings, st.text(min_size=MAX_ID_LENGTH + 1, max_size=MAX_ID_LENGTH + 20)),
    ),
    st.tuples(
        st.just("duration_ms"),
        st.one_of(
            st.text(max_size=10),
            st.booleans(),
            st.lists(st.integers(), max_size=2),
            st.integers(max_value=-1),
            st.floats(max_value=-1e-9, allow_infinity=False),
        ),
    ),
    st.tuples(
        st.just("attributes"),
        st.one_of(st.text(max_size=10), st.integers(), st.booleans(), st.lists(st.integers(), max_size=3)),
    ),
)

# Trace headers a caller may send: printable Latin-1 (what HTTP header values can carry), random
# near-misses of a valid traceparent, and long values.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300
).filter(lambda s: not s[:1].isspace())
hex_digits = "0123456789abcdefABCDEF"


@st.composite
def traceparents(draw: st.DrawFn) -> tuple[str, str | None]:
    """(header value, trace id it must yield or None when it is not a valid traceparent)."""
    trace_id = draw(st.text(alphabet="0123456789abcdef", min_size=32, max_size=32))
    span_id = draw(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
    flags = draw(st.sampled_from(["01", "00", "ff", "0g", "1"]))
    version = draw(st.sampled_from(["00", "00", "01", "ff", "0", "zz"]))
    valid = version == "00" and flags in ("01", "00", "ff") and int(trace_id, 16) != 0 and int(span_id, 16) != 0
    shape = draw(st.sampled_from(["ok", "upper", "short", "long", "extra", "garbage", "separators"]))
    if shape == "upper":
        trace_id, valid = trace_id.upper(), valid and trace_id.upper() == trace_id
    elif shape == "short":
        trace_id, valid = trace_id[: draw(st.integers(0, 31))], False
    elif shape == "long":
        trace_id, valid = trace_id + draw(st.text(alphabet=hex_digits, min_size=1, max_size=4000)), False
    elif shape == "extra":
        flags, valid = flags + "-" + draw(st.text(alphabet=hex_digits, max_size=20)), False
    elif shape == "garbage":
        return draw(header_text), None
    elif shape == "separators":
        return f"{version}_{trace_id}_{span_id}_{flags}", None
    return f"{version}-{trace_id}-{span_id}-{flags}", (trace_id if valid else None)


tracestates = st.one_of(
    header_text,
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9_\-*/]{0,20}(@[a-z][a-z0-9_\-*/]{0,10})?", fullmatch=True),
            st.from_regex(r"[\x21-\x2b\x2d-\x3c\x3e-\x7e]{1,40}", fullmatch=True),
        ),
        max_size=40,
    ).map(lambda members: ",".join(f"{k}={v}" for k, v in members)),
    st.integers(1, 7000).map(lambda n: "k=" + "v" * n),
)
baggages = st.one_of(
    header_text,
    st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True), header_text), max_size=30).map(
        lambda items: ",".join(f"{k}={v}" for k, v in items)
    ),
    st.integers(1, 7000).map(lambda n: "key=" + "%" * n),
    st.integers(1, 300).map(lambda n: ",".join(f"k{i}=v{i};prop" for i in range(n))),
)

"""Reading JSON the way Sentinel stores it: fast, and without silently changing a value.

orjson parses an integer beyond the 64-bit range as a float (18446744073709551616 becomes
1.8446744073709552e+19) and cannot write one back, so such a value would be stored altered. Bodies
holding a run of 19 or more digits take the standard library's parser, which sees integer literals
and keeps an out-of-range one as a `HugeInt`; validation (sentinel.events) then refuses the event
naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# Every digit becomes "0" and everything else a space, so a run of 19 digits is a plain substring
# search: several times faster than a regex over each message.
_DIGITS_ONLY = bytes.maketrans(bytes(range(256)), bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256)))
_LONG_RUN = b"0" * 19


class JsonError(ValueError):
    """Not JSON; the message says where and why."""


class HugeInt(str):
    """An integer literal outside the 64-bit range, kept as its text so nothing is lost."""


def _int(literal: str) -> int | HugeInt:
    value = int(literal)
    return value if _INT_MIN <= value <= _INT_MAX else HugeInt(literal)


def loads(data: bytes) -> Any:
    """Parse `data`; raises JsonError for invalid JSON."""
    return loads_noting_huge_ints(data)[0]


def loads_noting_huge_ints(data: bytes) -> tuple[Any, bool]:
    """Parse `data`, and say whether the value may hold a HugeInt (only a body with a run of 19
    or more digits can: without one, nothing in the value needs looking for them)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JsonError(str(exc)) from None
    if _LONG_RUN in data.translate(_DIGITS_ONLY):
        # Rare: only bodies with long digit runs (in strings too) pay for the second parse.
        return json.loads(data, parse_int=_int), True
    return value, False

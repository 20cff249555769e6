"""Reading JSON the way Sentinel stores it: fast, and without silently changing a value.

orjson parses an integer beyond the 64-bit range as a float (18446744073709551616 becomes
1.8446744073709552e+19) and cannot write one back, so such a value would be stored altered. Bodies
holding a run of 19 or more digits outside strings take the standard library's parser, which sees
integer literals, and are refused with a clear reason when one does not fit.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")


class JsonError(ValueError):
    """Not JSON; the message says where and why."""


class UnstorableJson(JsonError):
    """Valid JSON holding a value Sentinel could not store unchanged."""


def _checked_int(literal: str) -> int:
    value = int(literal)
    if not _INT_MIN <= value <= _INT_MAX:
        raise UnstorableJson(f"the integer {literal[:40]} is outside the 64-bit range; send it as a string")
    return value


def loads(data: bytes) -> Any:
    """Parse `data`; raises JsonError for invalid JSON, UnstorableJson for an integer that would
    not survive storage."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JsonError(str(exc)) from None
    if _LONG_DIGITS.search(data):
        # Rare: only bodies with long digit runs (in strings too) pay for the second parse.
        json.loads(data, parse_int=_checked_int)
    return value

"""sentinel.jsonvalues: JSON is read fast and never silently altered."""

from __future__ import annotations

import pytest

from sentinel.jsonvalues import JsonError, UnstorableJson, loads


def test_values_within_64_bits_parse_exactly() -> None:
    assert loads(b'{"a": 18446744073709551615, "b": -9223372036854775808, "s": "12345678901234567890123"}') == {
        "a": 18446744073709551615,
        "b": -9223372036854775808,
        "s": "12345678901234567890123",
    }


@pytest.mark.parametrize("literal", [b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 30])
def test_integers_beyond_64_bits_are_refused_not_rounded(literal: bytes) -> None:
    with pytest.raises(UnstorableJson, match="64-bit"):
        loads(b'{"n": ' + literal + b"}")


def test_invalid_json_raises_json_error() -> None:
    with pytest.raises(JsonError):
        loads(b"{nope")

"""sentinel.jsonvalues and its use in validation: JSON is read fast and never silently altered."""

from __future__ import annotations

import pytest

from sentinel.events import validate
from sentinel.jsonvalues import HugeInt, JsonError, loads


def test_values_within_64_bits_parse_exactly() -> None:
    assert loads(b'{"a": 18446744073709551615, "b": -9223372036854775808, "s": "12345678901234567890123"}') == {
        "a": 18446744073709551615,
        "b": -9223372036854775808,
        "s": "12345678901234567890123",
    }


@pytest.mark.parametrize("literal", [b"18446744073709551616", b"-9223372036854775809", b"1" + b"0" * 30])
def test_integers_beyond_64_bits_are_kept_as_text_and_refused_by_field(literal: bytes) -> None:
    event = loads(b'{"type": "t", "attributes": {"deep": [' + literal + b"]}}")
    assert event["attributes"]["deep"] == [HugeInt(literal.decode())]
    problem = validate(event)
    assert problem is not None and problem.field == "attributes" and "64-bit" in problem.reason
    wrong_type = validate(loads(b'{"type": ' + literal + b"}"))
    assert wrong_type is not None and wrong_type.field == "type"


def test_invalid_json_raises_json_error() -> None:
    with pytest.raises(JsonError):
        loads(b"{nope")

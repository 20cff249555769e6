"""sentinel.settings: values read from the environment."""

from __future__ import annotations

from sentinel.settings import parse_tokens


def test_parse_tokens() -> None:
    assert parse_tokens("") == ()
    assert parse_tokens(" a , b,,c ") == (b"a", b"b", b"c")

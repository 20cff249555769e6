"""ingest_app.auth: optional bearer tokens."""

from __future__ import annotations

from ingest_app.auth import authorized

TOKENS = (b"s3cret", b"other")


def test_no_tokens_configured_is_open() -> None:
    assert authorized(None, ()) is True
    assert authorized("Bearer anything", ()) is True
    assert authorized("garbage", ()) is True


def test_missing_header_is_refused() -> None:
    assert authorized(None, TOKENS) is False
    assert authorized("", TOKENS) is False


def test_wrong_token_is_refused() -> None:
    assert authorized("Bearer nope", TOKENS) is False
    assert authorized("Bearer s3cre", TOKENS) is False
    assert authorized("Bearer s3crets", TOKENS) is False
    assert authorized("Bearer ", TOKENS) is False


def test_other_schemes_are_refused() -> None:
    assert authorized("Basic s3cret", TOKENS) is False
    assert authorized("s3cret", TOKENS) is False


def test_right_token_is_accepted() -> None:
    assert authorized("Bearer s3cret", TOKENS) is True
    assert authorized("Bearer other", TOKENS) is True
    assert authorized("Bearer s3cret  ", TOKENS) is True


def test_non_ascii_token_does_not_raise() -> None:
    assert authorized("Bearer sécret", TOKENS) is False


def test_the_bearer_scheme_is_case_insensitive() -> None:
    assert authorized("bearer s3cret", (b"s3cret",))
    assert authorized("BEARER s3cret", (b"s3cret",))
    assert not authorized("Basic s3cret", (b"s3cret",))
    assert not authorized("Bearer ", (b"s3cret",))

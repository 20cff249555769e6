"""Masking: no secret an input holds survives, whatever the structure around it."""

from __future__ import annotations

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_proxy import masking
from mcp_proxy.masking import MASK

_B64URL = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits


def _body(alphabet: str, min_size: int, max_size: int = 48) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


# Secrets of well-known formats: their bodies may be anything their alphabet allows, repetitive
# and low-entropy included, so detection cannot lean on entropy.
_jwt = st.builds(lambda h, p, s: f"eyJ{h}.{p}.{s}", _body(_B64URL, 4), _body(_B64URL, 4), _body(_B64URL, 8))
_bearer = st.builds(lambda t: f"Bearer {t}", _body(_ALNUM + "._~+/-", 8))
_prefixed = st.one_of(
    st.builds(lambda b: f"sk-{b}", _body(_B64URL, 16)),
    st.builds(lambda b: f"sk-ant-{b}", _body(_B64URL, 16)),
    st.builds(lambda b: f"ghp_{b}", _body(_ALNUM, 20)),
    st.builds(lambda b: f"github_pat_{b}", _body(_ALNUM + "_", 20)),
    st.builds(lambda b: f"xoxb-{b}", _body(_ALNUM + "-", 12)),
    st.builds(lambda b: f"AKIA{b}", _body(string.ascii_uppercase + string.digits, 16, 16)),
    st.builds(lambda b: f"AIza{b}", _body(_B64URL, 35, 35)),
    st.builds(lambda b: f"glpat-{b}", _body(_B64URL, 20)),
)
# Random tokens with no known prefix: what the entropy rule is for (a random 32+ character token
# over letters and digits).
_random_token = st.builds(
    lambda chars: "".join(chars),
    st.lists(st.sampled_from(_ALNUM), min_size=32, max_size=64).filter(
        lambda cs: masking.looks_high_entropy("".join(cs))
    ),
)
secrets = st.one_of(_jwt, _bearer, _prefixed, _random_token)

_words = st.text(alphabet=string.ascii_letters + " ", max_size=20)
_separators = st.sampled_from([" ", ": ", "=", "\n", " (", "'", '"', ", "])
_plain_keys = st.sampled_from(["message", "query", "note", "data", "value", "items", "header", "text"])
_secret_keys = st.sampled_from(
    [
        "password",
        "PASSWD",
        "api_key",
        "apiKey",
        "X-Api-Key",
        "authorization",
        "Cookie",
        "client_secret",
        "db_token",
        "aws_credentials",
        "private_key",
        "userPassword",
    ]
)


def _embedded(secret: str) -> st.SearchStrategy[str]:
    """The secret inside text, the way it turns up in arguments ("token: sk-...", a header line)."""
    return st.builds(lambda a, s1, s2, b: f"{a}{s1}{secret}{s2}{b}", _words, _separators, _separators, _words)


def _nested(leaf: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Any JSON structure with `leaf` somewhere inside."""
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda k, v, extra: {**extra, k: v},
                _plain_keys,
                inner,
                st.dictionaries(_plain_keys, _words, max_size=2),
            ),
            st.builds(lambda v, extra: [*extra, v], inner, st.lists(st.integers() | _words, max_size=2)),
        ),
        max_leaves=6,
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_secret_in_a_string_value_survives(data: st.DataObject) -> None:
    secret = data.draw(secrets)
    value = data.draw(_nested(_embedded(secret)))
    assert secret not in json.dumps(masking.mask(value))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_values_under_secret_keys_are_replaced_whatever_they_are(data: st.DataObject) -> None:
    key = data.draw(_secret_keys)
    # A marker no other part of the structure can hold (the words around it have no digits).
    marker = data.draw(st.integers(0, 10**9).map(lambda n: f"hunter{n}"))
    hidden = data.draw(st.sampled_from([marker, [marker], {"inner": marker}]))
    value = data.draw(_nested(st.just({key: hidden})))
    masked = json.dumps(masking.mask(value))
    assert MASK in masked
    assert marker not in masked


def test_ordinary_text_is_kept() -> None:
    value = {
        "message": "Hello, world: 42 results for ticket ABC-123",
        "path": "/usr/local/lib/python3.11/site-packages",
    }
    assert masking.mask(value) == value


def test_a_secret_keeps_its_context() -> None:
    assert masking.mask_string("use Bearer abcdefgh12345678 please") == f"use {MASK} please"


def test_bounded_cuts_nesting_and_stringifies_huge_integers() -> None:
    deep: object = "leaf"
    for _ in range(masking.MAX_DEPTH + 5):
        deep = [deep]
    bounded = masking.bounded({"n": 2**70, "deep": deep})
    assert bounded["n"] == str(2**70)
    assert masking.CUT in json.dumps(bounded)

"""What the relay takes for a JSON-RPC message, and what it answers for anything else."""

from __future__ import annotations

import pytest

from mcp_proxy import jsonrpc
from mcp_proxy.jsonrpc import INVALID_REQUEST, PARSE_ERROR, NotJsonRpc


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', "request"),
        (b'{"jsonrpc":"2.0","method":"notifications/initialized"}', "notification"),
        (b'{"jsonrpc":"2.0","id":"a","result":{}}', "response"),
        (b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}', "error"),
    ],
)
def test_the_four_kinds(line: bytes, kind: str) -> None:
    assert jsonrpc.kind_of(jsonrpc.decode(line)) == kind


@pytest.mark.parametrize(
    ("line", "code", "request_id"),
    [
        (b"not json", PARSE_ERROR, None),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', INVALID_REQUEST, None),  # a batch
        (b'{"jsonrpc":"1.0","id":7,"method":"ping"}', INVALID_REQUEST, 7),
        (b'{"jsonrpc":"2.0","id":7,"method":3}', INVALID_REQUEST, 7),
        (b'{"jsonrpc":"2.0","id":7,"method":"x","params":[1]}', INVALID_REQUEST, 7),
        (b'{"jsonrpc":"2.0","id":7}', INVALID_REQUEST, None),
    ],
)
def test_anything_else_is_refused_with_the_error_to_answer(line: bytes, code: int, request_id: object) -> None:
    with pytest.raises(NotJsonRpc) as refused:
        jsonrpc.decode(line)
    assert (refused.value.code, refused.value.request_id) == (code, request_id)


def test_integers_beyond_64_bits_survive_a_round_trip() -> None:
    line = b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"n":123456789012345678901234567890}}'
    message = jsonrpc.decode(line)
    assert message["params"]["n"] == 123456789012345678901234567890
    assert jsonrpc.decode(jsonrpc.encode(message)) == message


def test_the_error_codes_are_the_sdks() -> None:
    import mcp_types

    assert (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.CONNECTION_CLOSED) == (
        mcp_types.PARSE_ERROR,
        mcp_types.INVALID_REQUEST,
        mcp_types.CONNECTION_CLOSED,
    )

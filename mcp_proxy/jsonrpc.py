"""JSON-RPC 2.0 messages as the relay handles them: plain dicts, parsed and written with orjson.

The relay reads only a few fields of a message (its kind, id, method, and what auditing needs), and
passes every message on as it came except a request's `params._meta`. So a message is the dict the
JSON parser made, not a typed model: parsing a line into the SDK's pydantic models and writing it
again cost most of the proxy's CPU per call, for fields the relay never reads.

The error codes are JSON-RPC's, and for a closed connection the `mcp` SDK's (mcp_types, whose values
tests/unit/mcp_proxy/test_jsonrpc.py holds these to), so a client reads the proxy's errors as the
SDK's own. They are not imported: importing the SDK's types takes a third of a second of a stdio
proxy's start.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
CONNECTION_CLOSED = -32000

Kind = Literal["request", "notification", "response", "error"]


class NotJsonRpc(ValueError):
    """A line or body that is not one JSON-RPC 2.0 message; `code` is the JSON-RPC error for it."""

    def __init__(self, code: int, reason: str, request_id: Any = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.request_id = request_id


def decode(data: bytes) -> dict[str, Any]:
    """The message `data` holds; raises NotJsonRpc for anything that is not one JSON-RPC message
    (a batch included: MCP has none since 2025-06-18, and the SDKs accept none)."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise NotJsonRpc(PARSE_ERROR, f"Parse error: {exc}") from None
    if isinstance(message, dict) and "method" in message and "id" in message:
        # A request is written again (with its trace context), so it must be read exactly: orjson
        # reads an integer beyond 64 bits as a float, the standard library keeps it.
        message = json.loads(data)
    if not isinstance(message, dict):
        raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: not a JSON-RPC message object")
    if message.get("jsonrpc") != "2.0":
        raise NotJsonRpc(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', message.get("id"))
    kind_of(message)  # raises for a shape that is none of the four
    return message


def kind_of(message: dict[str, Any]) -> Kind:
    method = message.get("method")
    if method is not None:
        if not isinstance(method, str):
            raise NotJsonRpc(INVALID_REQUEST, 'Invalid Request: "method" must be a string', message.get("id"))
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            raise NotJsonRpc(INVALID_REQUEST, 'Invalid Request: "params" must be an object', message.get("id"))
        return "notification" if "id" not in message else "request"
    if "id" in message:
        if isinstance(message.get("result"), dict):
            return "response"
        if isinstance(message.get("error"), dict):
            return "error"
    raise NotJsonRpc(INVALID_REQUEST, "Invalid Request: neither a request, a notification nor a response")


def encode(message: dict[str, Any]) -> bytes:
    """`message` as one line's bytes (without the newline)."""
    try:
        return orjson.dumps(message)
    except TypeError:
        # An integer beyond 64 bits (see decode).
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}

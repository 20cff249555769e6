"""A client's Streamable HTTP session as the proxy serves it: which HTTP answer each message gets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson

from mcp_proxy.http_session import HttpSession
from mcp_proxy.jsonrpc import PARSE_ERROR
from mcp_proxy.side import Received

ACCEPT_BOTH = (b"accept", b"application/json, text/event-stream")
JSON_BODY = (b"content-type", b"application/json")
INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}


class Exchange:
    """One HTTP request to the session, and what the session sent back."""

    def __init__(self, method: str, body: dict[str, Any] | bytes | None, headers: list[tuple[bytes, bytes]]) -> None:
        data = orjson.dumps(body) if isinstance(body, dict) else (body or b"")
        self.scope = {"type": "http", "method": method, "headers": headers}
        self._requests = [{"type": "http.request", "body": data, "more_body": False}]
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self._requests:
            return self._requests.pop(0)
        await anyio.sleep_forever()
        raise AssertionError

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return self.sent[0]["status"]

    @property
    def content_type(self) -> bytes:
        return dict(self.sent[0]["headers"])[b"content-type"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def post(body: dict[str, Any] | bytes, *headers: tuple[bytes, bytes]) -> Exchange:
    return Exchange("POST", body, list(headers) or [ACCEPT_BOTH, JSON_BODY])


def _run(body: Callable[[HttpSession, list[Received]], Awaitable[None]]) -> list[Received]:
    """Run `body` against a session whose relay side is read into a list."""
    handed: list[Received] = []

    async def main() -> None:
        session = HttpSession("s1", None)

        async def relay() -> None:
            async for item in session.receive():
                assert isinstance(item, Received)
                handed.append(item)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(relay)
                opening = post(INITIALIZE)
                tg.start_soon(session.handle, opening.scope, opening.receive, opening.send)
                await _until(lambda: len(handed) == 1)
                await session.send({"jsonrpc": "2.0", "id": 0, "result": {}})
                await _until(lambda: len(opening.sent) == 2)
                assert opening.content_type == b"application/json"
                await body(session, handed)
                await session.terminate()

    anyio.run(main)
    return handed


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await anyio.sleep(0.001)


def test_a_response_that_comes_first_is_a_json_body_and_anything_before_it_makes_a_stream() -> None:
    async def body(session: HttpSession, handed: list[Received]) -> None:
        plain = post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        streamed = post({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow"}})
        async with anyio.create_task_group() as tg:
            for exchange in (plain, streamed):
                tg.start_soon(session.handle, exchange.scope, exchange.receive, exchange.send)
            await _until(lambda: len(handed) == 3)
            progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
            await session.send(progress, related_request_id=2)
            await session.send({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}})
            await session.send({"jsonrpc": "2.0", "id": 2, "result": {"content": []}}, raw=b'{"as":"it came"}')
        assert (plain.status, plain.content_type) == (200, b"application/json")
        assert orjson.loads(plain.body) == {"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}
        assert (streamed.status, streamed.content_type) == (200, b"text/event-stream")
        assert streamed.body == (
            b"event: message\ndata: " + orjson.dumps(progress) + b'\n\nevent: message\ndata: {"as":"it came"}\n\n'
        )
        assert dict(plain.sent[0]["headers"])[b"mcp-session-id"] == b"s1"

    _run(body)


def test_notifications_and_responses_are_accepted_and_handed_on_with_their_request_headers() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def body(session: HttpSession, handed: list[Received]) -> None:
        line = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
        note = post(line, ACCEPT_BOTH, JSON_BODY, (b"Traceparent", traceparent.encode()))
        await session.handle(note.scope, note.receive, note.send)
        assert (note.status, note.body) == (202, b"")
        await _until(lambda: len(handed) == 2)
        assert handed[1].message["method"] == "notifications/initialized"
        assert handed[1].raw == line  # one line: passed on as it came
        assert handed[1].headers is not None and handed[1].headers["traceparent"] == traceparent

    _run(body)


def test_a_cancelled_request_ends_with_an_empty_stream() -> None:
    async def body(session: HttpSession, handed: list[Received]) -> None:
        call = post({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "x"}})
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.handle, call.scope, call.receive, call.send)
            await _until(lambda: len(handed) == 2)
            unanswered = handed[1].unanswered
            assert unanswered is not None
            await unanswered()
        assert (call.status, call.content_type, call.body) == (200, b"text/event-stream", b"")

    _run(body)


def test_what_is_refused_and_why() -> None:
    async def body(session: HttpSession, handed: list[Received]) -> None:
        cases = [
            (post({"jsonrpc": "2.0", "id": 1, "method": "x"}, JSON_BODY), 406),
            (post({"jsonrpc": "2.0", "id": 1, "method": "x"}, ACCEPT_BOTH), 415),
            (post(b"{not json"), 400),
            (Exchange("PUT", None, []), 405),
        ]
        for exchange, status in cases:
            await session.handle(exchange.scope, exchange.receive, exchange.send)
            assert exchange.status == status, exchange.body
        assert orjson.loads(cases[2][0].body)["error"]["code"] == PARSE_ERROR
        first_get = Exchange("GET", None, [(b"accept", b"text/event-stream")])
        second_get = Exchange("GET", None, [(b"accept", b"text/event-stream")])
        async with anyio.create_task_group() as tg:
            tg.start_soon(session.handle, first_get.scope, first_get.receive, first_get.send)
            await _until(lambda: len(first_get.sent) == 1)
            await session.handle(second_get.scope, second_get.receive, second_get.send)
            assert second_get.status == 409
            await session.send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            await _until(lambda: len(first_get.sent) == 2)
            await session.terminate()
        assert (
            first_get.body == b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n'
        )
        assert len(handed) == 1  # nothing refused reached the relay

    _run(body)


def test_only_an_initialize_opens_a_session() -> None:
    async def main() -> None:
        session = HttpSession("s2", None)
        listing = post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        await session.handle(listing.scope, listing.receive, listing.send)
        assert listing.status == 400

    anyio.run(main)

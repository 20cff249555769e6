"""A sample of audit rows for the tests of the audit questions and the dashboard's SQL: one chunk of
12 events of a server of its own, written by the worker's writer twice (a retried chunk)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from workers.chunk import Chunk, ChunkEvent
from workers.clickhouse.client import new_client
from workers.clickhouse.migrations import migrate
from workers.clickhouse.writer import insert_chunk


def _event(server: str, n: int, *, session: str, status: str, duration: float, at: datetime) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "type": "tool_call",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "session_id": session,
        "server": server,
        "method": "tools/call",
        "tool": f"tool-{n % 2}",
        "status": status,
        "duration_ms": duration,
        "principal": f"user-{n % 3}",
        "attributes": {"client_name": "pytest", "client_version": "1"},
    }
    if status == "tool_error":
        event["attributes"] = {"error_message": f"disk full {n}"}
    return event


def store_audit_sample() -> dict[str, object]:
    """One chunk of 12 events of a server of this test's own, inserted twice (a retried chunk)."""
    client = new_client()
    migrate(client)
    server = f"audit-test-{uuid.uuid4().hex[:8]}"
    session = f"session-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        _event(
            server,
            n,
            session=session if n < 4 else f"other-{n}",
            status="tool_error" if n % 4 == 3 else "ok",
            duration=1000.0 if n == 5 else 10.0 + n,
            at=now + timedelta(seconds=n),
        )
        for n in range(12)
    ]
    traces = [uuid.uuid4().hex for _ in events]
    chunk = Chunk(
        topic="mcp.events",
        partition=0,
        first_offset=1_000_000,
        last_offset=1_000_011,
        events=tuple(
            ChunkEvent(
                1_000_000 + i,
                str(e["event_id"]),
                f"00-{traces[i]}-{'1' * 16}-01",
                "",
                "tool_call",
                int(now.timestamp() * 1000),
                orjson.dumps(e).decode(),
            )
            for i, e in enumerate(events)
        ),
        ack_to="",
    )
    insert_chunk(client, chunk)
    insert_chunk(client, chunk)
    return {"server": server, "session": session, "events": events, "traces": traces}

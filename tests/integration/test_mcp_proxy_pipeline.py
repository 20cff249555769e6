"""The proxy in front of the real server-everything, posting to the running pipeline: one row per
call in ClickHouse with the right fields, and the call's spans one tree in Jaeger.

Needs ingest, the bridge and a worker (`sentinel up` starts what is not running). That the
event's own `send mcp.events` span hangs under the proxy's SERVER span is ingest's part (the
event's `traceparent` field); here the field is checked against the proxy's spans.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel import semconv, settings
from sentinel_cli.jaeger import JaegerClient, Span
from sentinel_local import processes, stack
from sentinel_local.stack.runner import free_port
from tests.integration import mcp_peers
from tests.integration.test_mcp_proxy_stdio import crashing_everything
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

PIPELINE = ("worker", "bridge", "ingest")


@pytest.fixture(scope="module")
def pipeline() -> None:
    """The pipeline processes, started if they are not running (never restarted: others may use them)."""
    try:
        for name in PIPELINE:
            processes.get(name).up()
    except stack.ServiceError as exc:
        pytest.fail(f"{exc}\n\nStart the pipeline with `.venv/bin/sentinel up`.", pytrace=False)


def _proxy_env(tmp: Path) -> dict[str, str]:
    # The local Jaeger for the proxy's spans, the running ingest for its events.
    return processes.process_env(
        SENTINEL_PROXY_DATA_DIR=str(tmp / "proxy-data"), SENTINEL_INGEST_URL=settings.INGEST_URL
    )


def _rows(server: str, expected: int, timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """The stored events of `server` (read with FINAL), once at least `expected` are in (the
    pipeline is shared: under other load a row can take a while)."""
    client = new_client()
    deadline = time.monotonic() + timeout_s
    payloads: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = client.execute(
            f"SELECT payload FROM {QUALIFIED_EVENTS_TABLE} FINAL WHERE position(payload, %(marker)s) > 0",
            {"marker": json.dumps(server)},
        )
        payloads = [event for (text,) in rows if (event := json.loads(text)).get("server") == server]
        if len(payloads) >= expected:
            time.sleep(1.0)  # anything more would be a duplicate or an event too many: read once more
            rows = client.execute(
                f"SELECT payload FROM {QUALIFIED_EVENTS_TABLE} FINAL WHERE position(payload, %(marker)s) > 0",
                {"marker": json.dumps(server)},
            )
            return [event for (text,) in rows if (event := json.loads(text)).get("server") == server]
        time.sleep(0.5)
    raise AssertionError(f"{len(payloads)} of at least {expected} events of {server} reached ClickHouse: {payloads}")


def _one(rows: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    found = [row for row in rows if all(row.get(k) == v for k, v in fields.items())]
    assert len(found) == 1, (fields, rows)
    return found[0]


def test_each_call_is_one_row_with_the_right_fields_and_one_trace(
    pipeline: None, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    server = f"everything-{uuid.uuid4().hex[:8]}"
    argv = mcp_peers.proxy_argv("--name", server, "--principal", "ada", upstream=mcp_peers.everything_argv())

    async def main() -> None:
        async with mcp_peers.session_over_stdio(argv, _proxy_env(tmp_path)) as session:
            await session.call_tool("echo", {"message": "hello", "api_key": "sk-abcdefghijklmnopqrstu"})
            await session.call_tool("trigger-sampling-request", {"prompt": "say hi"})
            with anyio.move_on_after(0.5):
                await session.call_tool("trigger-long-running-operation", {"duration": 10, "steps": 10})
            await session.call_tool("get-sum", {"a": 1, "b": 2})

    anyio.run(main)
    # initialize, initialized, the server's list_changed, 4 calls, sampling, the cancellation.
    rows = _rows(server, expected=9)
    requests = [row for row in rows if row["type"] != "mcp.notification"]
    keys = [
        (row["method"], row["attributes"]["direction"], row["attributes"]["jsonrpc_request_id"]) for row in requests
    ]
    assert len(keys) == len(set(keys)), "one row per request/response pair"
    assert len({row["session_id"] for row in rows}) == 1

    echo = _one(rows, method="tools/call", tool="echo")
    assert (echo["type"], echo["status"], echo["principal"]) == ("tool_call", "ok", "ada")
    assert echo["attributes"]["arguments"] == {"message": "hello", "api_key": "[MASKED]"}
    assert echo["attributes"]["transport"] == "stdio"
    assert echo["attributes"]["protocol_version"] == "2025-11-25"
    assert echo["attributes"]["client_name"] == "mcp"
    assert echo["attributes"]["request_bytes"] > 0 and echo["attributes"]["response_bytes"] > 0
    assert echo["duration_ms"] > 0
    sampling = _one(rows, method="sampling/createMessage")
    assert (sampling["status"], sampling["attributes"]["direction"]) == ("ok", "server->client")
    assert _one(rows, method="tools/call", tool="trigger-long-running-operation")["status"] == "cancelled"
    assert _one(rows, method="notifications/cancelled")["type"] == "mcp.notification"
    assert _one(rows, method="initialize")["type"] == "mcp.request"

    # The trace: the test client's span -> the proxy's SERVER span -> its CLIENT span to the upstream,
    # and beside it the event's way through ingest and the bridge.
    _export_client_spans(spans)
    trace_id, server_span_id = echo["traceparent"].split("-")[1:3]
    expected = {"tools/call echo", "MCP send tools/call echo", semconv.SPAN_PUBLISH, semconv.SPAN_CONSUME}
    tree = JaegerClient().wait_for(trace_id, expected, timeout_s=30)
    by_id = {span.span_id: span for span in tree}
    proxy_server = by_id[server_span_id]
    assert (proxy_server.name, proxy_server.service) == ("tools/call echo", "sentinel-proxy")
    assert proxy_server.tags["span.kind"] == "server"
    assert proxy_server.tags["mcp.method.name"] == "tools/call"
    assert proxy_server.tags["gen_ai.tool.name"] == "echo"
    assert proxy_server.tags["mcp.session.id"] == echo["session_id"]
    children = {(s.name, s.service, s.tags["span.kind"]): s for s in tree if s.parent_id == server_span_id}
    assert set(children) == {
        ("tools/call echo", semconv.SERVICE_PROXY, "client"),
        (semconv.SPAN_PUBLISH, semconv.SERVICE_INGEST, "producer"),
    }, children
    publish = children[(semconv.SPAN_PUBLISH, semconv.SERVICE_INGEST, "producer")]
    [consume] = [s for s in tree if s.parent_id == publish.span_id]
    assert (consume.name, consume.service) == (semconv.SPAN_CONSUME, semconv.SERVICE_BRIDGE)
    assert by_id[proxy_server.parent_id].name == "MCP send tools/call echo"
    _assert_one_tree(tree)


def test_the_upstream_crashing_mid_call_is_a_failed_row(pipeline: None, tmp_path: Path) -> None:
    server = f"crashing-{uuid.uuid4().hex[:8]}"
    pid_file = tmp_path / "upstream.pid"
    argv = mcp_peers.proxy_argv("--name", server, upstream=crashing_everything(pid_file))

    async def on_progress(_value: float, _total: float | None, _message: str | None) -> None:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

    async def main() -> None:
        async with mcp_peers.session_over_stdio(argv, _proxy_env(tmp_path)) as session:
            with pytest.raises(MCPError):
                await session.call_tool(
                    "trigger-long-running-operation", {"duration": 10, "steps": 20}, progress_callback=on_progress
                )

    anyio.run(main)
    rows = _rows(server, expected=3)
    failed = _one(rows, method="tools/call")
    assert failed["status"] == "failed"
    assert failed["attributes"]["error_code"] == -32000


def _export_client_spans(spans: InMemorySpanExporter) -> None:
    """The test's own client spans to Jaeger, so the trace holds the MCP client's side too."""
    exporter = OTLPSpanExporter(endpoint=f"http://{settings.HOST}:{settings.JAEGER_OTLP_HTTP_PORT}/v1/traces")
    assert exporter.export(spans.get_finished_spans()) == SpanExportResult.SUCCESS
    exporter.shutdown()


def _assert_one_tree(tree: list[Span]) -> None:
    ids = {span.span_id for span in tree}
    roots = [span for span in tree if span.parent_id is None or span.parent_id not in ids]
    assert len(roots) == 1, [(s.name, s.service, s.parent_id) for s in roots]


def test_over_http_the_row_has_the_mcp_session_id_and_a_principal_from_the_token(
    pipeline: None, tmp_path: Path
) -> None:
    import subprocess

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from mcp_proxy import audit

    server = f"everything-http-{uuid.uuid4().hex[:8]}"
    node, script, mode = mcp_peers.everything_argv()
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {server: {"command": node, "args": [script, mode]}}}))
    port = free_port()
    proxy = subprocess.Popen(
        mcp_peers.proxy_argv_http(f"127.0.0.1:{port}", str(config)),
        env=_proxy_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    session_ids: set[str] = set()

    async def note_session(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            session_ids.add(response.headers["mcp-session-id"])

    async def main() -> None:
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": "Bearer a-client-token"},
                timeout=httpx2.Timeout(30.0, read=300.0),
                event_hooks={"response": [note_session]},
            ) as http,
            streamable_http_client(f"http://127.0.0.1:{port}/mcp/{server}", http_client=http) as (read, write),
            mcp_peers.client_session(read, write) as session,
        ):
            await session.call_tool("echo", {"message": "over http"})

    try:
        mcp_peers.wait_for_http(f"http://127.0.0.1:{port}/healthz", proxy)
        anyio.run(main)
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(20)
    echo = _one(_rows(server, expected=3), method="tools/call", tool="echo")
    assert [echo["session_id"]] == list(session_ids)
    assert echo["principal"] == audit.principal_for_token("a-client-token")
    assert echo["attributes"]["transport"] == "http"
    assert "a-client-token" not in json.dumps(echo)

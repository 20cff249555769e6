"""The proxy's HTTP mode between the SDK's Streamable HTTP client and the real server-everything,
both as a Streamable HTTP upstream (`url`) and as a stdio upstream (`command`) per client session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcp_proxy.relay import UPSTREAM_CLOSED
from sentinel_local.stack.runner import free_port
from tests.integration import mcp_peers
from tests.integration.test_mcp_proxy_stdio import crashing_everything, normalise


@dataclass(frozen=True)
class Peers:
    direct_http: str  # server-everything's own Streamable HTTP endpoint
    proxy: str  # the proxy's base URL
    env: dict[str, str]
    pid_file: Path


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    tmp = tmp_path_factory.mktemp("mcp-http")
    env = mcp_peers.peer_env(tmp)
    upstream_port, proxy_port = free_port(), free_port()
    everything = _start(mcp_peers.everything_argv("streamableHttp"), {**env, "PORT": str(upstream_port)})
    direct = f"http://127.0.0.1:{upstream_port}/mcp"
    pid_file = tmp / "crashing.pid"
    stdio_argv = mcp_peers.everything_argv()
    config = {
        "mcpServers": {
            "remote": {"url": direct},
            "everything": {"command": stdio_argv[0], "args": stdio_argv[1:], "env": {"SENTINEL_TEST": "1"}},
            "crashing": {"command": "sh", "args": crashing_everything(pid_file)[1:]},
        }
    }
    config_file = tmp / "mcp.json"
    config_file.write_text(json.dumps(config))
    proxy = _start(
        mcp_peers.proxy_argv_http(f"127.0.0.1:{proxy_port}", str(config_file)), {**env, "PYTHONUNBUFFERED": "1"}
    )
    try:
        mcp_peers.wait_for_http(f"http://127.0.0.1:{upstream_port}/mcp", everything)
        mcp_peers.wait_for_http(f"http://127.0.0.1:{proxy_port}/healthz", proxy)
        yield Peers(direct, f"http://127.0.0.1:{proxy_port}", {**env, "SENTINEL_TEST": "1"}, pid_file)
    finally:
        _stop(proxy)
        _stop(everything)


async def _everything_over_http(url: str) -> dict[str, Any]:
    async with mcp_peers.session_over_http(url) as session:
        return await mcp_peers.what_a_client_sees(session)


async def _everything_over_stdio(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    async with mcp_peers.session_over_stdio(argv, env) as session:
        return await mcp_peers.what_a_client_sees(session)


def _assert_same(direct: dict[str, Any], proxied: dict[str, Any]) -> None:
    assert len(direct["tools/list"]) >= 10, direct["tools/list"]
    assert direct.keys() == proxied.keys()
    for name in direct:
        assert normalise(proxied[name]) == normalise(direct[name]), name


def test_every_tool_of_an_http_upstream_gives_the_same_result_through_the_proxy(peers: Peers) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        return await _everything_over_http(peers.direct_http), await _everything_over_http(f"{peers.proxy}/mcp/remote")

    _assert_same(*anyio.run(main))


def test_every_tool_of_a_stdio_upstream_served_over_http_gives_the_same_result(peers: Peers) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        direct = await _everything_over_stdio(mcp_peers.everything_argv(), {"SENTINEL_TEST": "1"})
        return direct, await _everything_over_http(f"{peers.proxy}/mcp/everything")

    _assert_same(*anyio.run(main))


@pytest.mark.parametrize("server", ["remote", "everything"])
def test_sampling_elicitation_progress_and_cancellation_over_http(peers: Peers, server: str) -> None:
    progress: list[float] = []

    async def on_progress(value: float, _total: float | None, _message: str | None) -> None:
        progress.append(value)

    async def main() -> dict[str, str]:
        texts = {}
        async with mcp_peers.session_over_http(f"{peers.proxy}/mcp/{server}") as session:
            for tool, arguments in (
                ("trigger-sampling-request", {"prompt": "say hi"}),
                ("trigger-elicitation-request", {}),
                ("get-roots-list", {}),
            ):
                result = await session.call_tool(tool, arguments)
                texts[tool] = " ".join(getattr(part, "text", "") for part in result.content)
            await session.call_tool(
                "trigger-long-running-operation", {"duration": 0.6, "steps": 3}, progress_callback=on_progress
            )
            with anyio.move_on_after(0.5) as scope:
                await session.call_tool("trigger-long-running-operation", {"duration": 10, "steps": 10})
            assert scope.cancelled_caught
            with anyio.fail_after(5):
                texts["echo"] = (await session.call_tool("echo", {"message": "after"})).content[0].text  # type: ignore[union-attr]
        return texts

    texts = anyio.run(main)
    assert mcp_peers.SAMPLED_TEXT in texts["trigger-sampling-request"]
    assert "Ada" in texts["trigger-elicitation-request"]
    assert mcp_peers.ROOT_URI in texts["get-roots-list"]
    assert progress == [1, 2, 3]
    assert texts["echo"] == "Echo: after"


def test_a_stdio_upstream_crashing_mid_call_gives_the_http_client_a_json_rpc_error(peers: Peers) -> None:
    async def on_progress(_value: float, _total: float | None, _message: str | None) -> None:
        os.kill(int(peers.pid_file.read_text()), signal.SIGKILL)

    async def main() -> MCPError:
        async with mcp_peers.session_over_http(f"{peers.proxy}/mcp/crashing") as session:
            with anyio.fail_after(20), pytest.raises(MCPError) as raised:
                await session.call_tool(
                    "trigger-long-running-operation", {"duration": 10, "steps": 20}, progress_callback=on_progress
                )
            return raised.value

    error = anyio.run(main)
    assert (error.error.code, error.error.message) == (CONNECTION_CLOSED, UPSTREAM_CLOSED)


def test_metrics_and_health(peers: Peers) -> None:
    async def main() -> None:
        async with mcp_peers.session_over_http(f"{peers.proxy}/mcp/remote") as session:
            await session.call_tool("echo", {"message": "counted"})

    anyio.run(main)
    assert requests.get(f"{peers.proxy}/healthz", timeout=5).json()["status"] == "ok"
    text = requests.get(f"{peers.proxy}/metrics", timeout=5).text
    assert 'sentinel_proxy_calls_total{method="tools/call",server="remote",status="ok"}' in text
    assert "sentinel_proxy_call_duration_seconds_bucket" in text

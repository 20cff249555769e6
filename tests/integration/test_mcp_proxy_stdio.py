"""The proxy over stdio between the official `mcp` SDK's client and the real server-everything.

Each comparison runs server-everything twice, direct and through the proxy, with the same
environment and the same client callbacks, and compares what the client gets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcp_proxy.relay import UPSTREAM_CLOSED
from tests.integration import mcp_peers

# What differs between two runs of server-everything whoever calls it: the clock time it stamps on
# dynamic resources ("created at 11:57:06 PM") and the random ids it makes (elicitation ids).
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}:\d{2}\s?[AP]M\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def normalise(value: Any) -> Any:
    if isinstance(value, str):
        return _UUID.sub("<uuid>", _CLOCK.sub("<time>", value))
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


async def _everything(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    async with mcp_peers.session_over_stdio(argv, env) as session:
        return await mcp_peers.what_a_client_sees(session)


def test_every_tool_gives_the_same_result_through_the_proxy(tmp_path: Path) -> None:
    env = mcp_peers.peer_env(tmp_path)
    upstream = mcp_peers.everything_argv()

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        direct = await _everything(upstream, env)
        proxied = await _everything(mcp_peers.proxy_argv("--name", "everything", upstream=upstream), env)
        return direct, proxied

    direct, proxied = anyio.run(main)
    assert len(direct["tools/list"]) >= 10, direct["tools/list"]
    assert direct.keys() == proxied.keys()
    for name in direct:
        assert normalise(proxied[name]) == normalise(direct[name]), name


def test_sampling_elicitation_and_roots_round_trip(tmp_path: Path) -> None:
    argv = mcp_peers.proxy_argv(upstream=mcp_peers.everything_argv())

    async def main() -> dict[str, str]:
        texts = {}
        async with mcp_peers.session_over_stdio(argv, mcp_peers.peer_env(tmp_path)) as session:
            for tool, arguments in (
                ("trigger-sampling-request", {"prompt": "say hi"}),
                ("trigger-elicitation-request", {}),
                ("get-roots-list", {}),
            ):
                result = await session.call_tool(tool, arguments)
                texts[tool] = " ".join(getattr(part, "text", "") for part in result.content)
        return texts

    texts = anyio.run(main)
    assert mcp_peers.SAMPLED_TEXT in texts["trigger-sampling-request"]
    assert "Ada" in texts["trigger-elicitation-request"]
    assert mcp_peers.ROOT_URI in texts["get-roots-list"]


def test_progress_notifications_reach_the_client(tmp_path: Path) -> None:
    argv = mcp_peers.proxy_argv(upstream=mcp_peers.everything_argv())
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, _message: str | None) -> None:
        progress.append((value, total))

    async def main() -> None:
        async with mcp_peers.session_over_stdio(argv, mcp_peers.peer_env(tmp_path)) as session:
            await session.call_tool(
                "trigger-long-running-operation", {"duration": 0.6, "steps": 3}, progress_callback=on_progress
            )

    anyio.run(main)
    assert progress == [(1, 3), (2, 3), (3, 3)]


def test_a_cancelled_call_leaves_the_session_working(tmp_path: Path) -> None:
    argv = mcp_peers.proxy_argv(upstream=mcp_peers.everything_argv())

    async def main() -> str:
        async with mcp_peers.session_over_stdio(argv, mcp_peers.peer_env(tmp_path)) as session:
            with anyio.move_on_after(0.5) as scope:
                await session.call_tool("trigger-long-running-operation", {"duration": 10, "steps": 10})
            assert scope.cancelled_caught
            with anyio.fail_after(5):
                result = await session.call_tool("echo", {"message": "after the cancel"})
            return result.content[0].text  # type: ignore[union-attr]

    assert anyio.run(main) == "Echo: after the cancel"


def crashing_everything(pid_file: Path) -> list[str]:
    """server-everything under a shell that records its pid, so a test can kill it mid-call."""
    node, script, mode = mcp_peers.everything_argv()
    # A background job's stdin is /dev/null unless redirected from another descriptor.
    return ["sh", "-c", f'exec 3<&0; "{node}" "{script}" {mode} <&3 & echo $! > "{pid_file}"; wait']


def test_the_upstream_crashing_mid_call_gives_the_client_a_json_rpc_error(tmp_path: Path) -> None:
    import os
    import signal

    pid_file = tmp_path / "upstream.pid"
    argv = mcp_peers.proxy_argv(upstream=crashing_everything(pid_file))

    async def on_progress(_value: float, _total: float | None, _message: str | None) -> None:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the call is under way: crash the server

    async def main() -> MCPError:
        async with mcp_peers.session_over_stdio(argv, mcp_peers.peer_env(tmp_path)) as session:
            with anyio.fail_after(20), pytest.raises(MCPError) as raised:
                await session.call_tool(
                    "trigger-long-running-operation", {"duration": 10, "steps": 20}, progress_callback=on_progress
                )
            return raised.value

    error = anyio.run(main)
    assert (error.error.code, error.error.message) == (CONNECTION_CLOSED, UPSTREAM_CLOSED)


def test_an_upstream_that_cannot_start_is_an_error_the_client_can_read(tmp_path: Path) -> None:
    argv = mcp_peers.proxy_argv("--name", "missing", upstream=[str(tmp_path / "no-such-server")])

    async def main() -> None:
        with anyio.fail_after(20):
            async with mcp_peers.session_over_stdio(argv, mcp_peers.peer_env(tmp_path)):
                pass

    # initialize fails inside the SDK's task groups, which wrap the error.
    with pytest.RaisesGroup(pytest.RaisesExc(MCPError, match="'missing' could not be started"), flatten_subgroups=True):
        anyio.run(main)

"""mcpServers configuration and the environment a started server gets."""

from __future__ import annotations

import pytest

from mcp_proxy import upstream
from mcp_proxy.upstream import ConfigError, HttpUpstream, StdioUpstream


def test_parse_config_reads_stdio_and_http_servers() -> None:
    servers = upstream.parse_config(
        {
            "mcpServers": {
                "everything": {"command": "npx", "args": ["-y", "server"], "env": {"A": "1"}},
                "remote": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer x"}},
            }
        }
    )
    assert servers["everything"] == StdioUpstream("npx", ("-y", "server"), {"A": "1"})
    assert servers["remote"] == HttpUpstream("http://127.0.0.1:3001/mcp", {"Authorization": "Bearer x"})


@pytest.mark.parametrize(
    "data",
    [{}, {"mcpServers": {}}, {"mcpServers": {"a": {}}}, {"mcpServers": {"a/b": {"command": "x"}}}, []],
)
def test_parse_config_refuses_what_it_cannot_serve(data: object) -> None:
    with pytest.raises(ConfigError):
        upstream.parse_config(data)


def test_a_stdio_proxy_passes_its_environment_on_but_not_its_ingest_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SETTING", "kept")
    monkeypatch.setenv("SENTINEL_PROXY_INGEST_TOKEN", "proxy-only")
    env = upstream.child_environment(StdioUpstream("node"))
    assert env["SERVER_SETTING"] == "kept"
    assert "SENTINEL_PROXY_INGEST_TOKEN" not in env


def test_a_configured_server_gets_the_sdks_default_environment_and_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SETTING", "not passed")
    env = upstream.child_environment(StdioUpstream("node", (), {"A": "1", "PATH": "/configured"}))
    assert env["A"] == "1" and env["PATH"] == "/configured"
    assert "SERVER_SETTING" not in env
    assert "HOME" in env

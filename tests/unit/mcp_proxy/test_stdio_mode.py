"""stdio mode's defaults."""

from __future__ import annotations

from mcp_proxy.stdio_mode import default_name
from mcp_proxy.upstream import StdioUpstream


def test_default_name_is_the_server_not_its_launcher() -> None:
    assert default_name(StdioUpstream("npx", ("-y", "@modelcontextprotocol/server-everything"))) == "server-everything"
    assert default_name(StdioUpstream("node", ("/x/server-everything/dist/index.js", "stdio"))) == "server-everything"
    assert default_name(StdioUpstream("/usr/local/bin/mcp-server-git")) == "mcp-server-git"

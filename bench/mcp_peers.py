"""`mcp-proxy` from PyPI, the unaudited baseline of the proxy benchmark, installed pinned on first
use into a virtualenv of its own (`<stack>/bench/mcp-proxy-venv`): it needs `mcp<2` and the project
pins the SDK's 2.x, so the two cannot share the project's venv.

server-everything, the upstream, is the one the tests and the demo install
(`sentinel_local.stack.mcp_peers`). The installer prints what it does on stderr and does nothing
when the pinned version is already there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sentinel import settings

MCP_PROXY = "mcp-proxy"
MCP_PROXY_VERSION = "0.13.0"

# The installers' output goes to this process's standard error by descriptor: stdout carries the
# benchmark's JSON document, and sys.stderr may be a stream with no descriptor (pytest's capture).
STDERR_FD = 2
MCP_PROXY_VENV = settings.STACK_DIR / "bench" / "mcp-proxy-venv"


def _say(message: str) -> None:
    print(f"[mcp-peers] {message}", file=sys.stderr, flush=True)


def mcp_proxy() -> Path:
    """The pinned `mcp-proxy` console script in its own venv, created and installed if absent."""
    script = MCP_PROXY_VENV / "bin" / "mcp-proxy"
    if mcp_proxy_versions().get(MCP_PROXY) != MCP_PROXY_VERSION:
        python = MCP_PROXY_VENV / "bin" / "python"
        if not python.exists():
            _say(f"creating a venv for {MCP_PROXY} at {MCP_PROXY_VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(MCP_PROXY_VENV)], check=True, stdout=STDERR_FD)
        _say(f"installing {MCP_PROXY}=={MCP_PROXY_VERSION} into {MCP_PROXY_VENV}")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"{MCP_PROXY}=={MCP_PROXY_VERSION}"],
            check=True,
            stdout=STDERR_FD,
        )
    return script


def mcp_proxy_versions() -> dict[str, str]:
    """Versions of mcp-proxy and of the MCP SDK it runs on, in its venv; empty when not installed."""
    python = MCP_PROXY_VENV / "bin" / "python"
    if not python.exists():
        return {}
    probe = "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in ('mcp-proxy', 'mcp')}))"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}

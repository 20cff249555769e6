"""The MCP peers the proxy benchmark runs that no one here wrote, installed pinned on first use.

- `@modelcontextprotocol/server-everything` from npm, into `<stack>/mcp-peers`, run with the
  machine's `node`.
- `mcp-proxy` from PyPI, into a virtualenv of its own (`<stack>/bench/mcp-proxy-venv`): it needs
  `mcp<2` and the project pins the SDK's 2.x, so the two cannot share the project's venv.

Each installer prints what it does on stderr, does nothing when the pinned version is already
there, and raises `PeerMissing` with what to install when a toolchain (node, npm) is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from sentinel import settings

SERVER_EVERYTHING = "@modelcontextprotocol/server-everything"
SERVER_EVERYTHING_VERSION = "2026.8.31"
MCP_PROXY = "mcp-proxy"
MCP_PROXY_VERSION = "0.13.0"

PEERS_DIR = settings.STACK_DIR / "mcp-peers"
MCP_PROXY_VENV = settings.STACK_DIR / "bench" / "mcp-proxy-venv"


class PeerMissing(RuntimeError):
    """A peer cannot be installed or run here; the message says what is missing."""


def _say(message: str) -> None:
    print(f"[mcp-peers] {message}", file=sys.stderr, flush=True)


def node() -> str:
    """Path of the machine's `node`; raises PeerMissing without it."""
    found = shutil.which("node")
    if found is None:
        raise PeerMissing("node is not on PATH: server-everything runs on Node.js (apt-get install nodejs npm)")
    return found


def server_everything() -> Path:
    """The pinned server-everything's entry script (`node SCRIPT stdio|streamableHttp`), installed if absent."""
    package = PEERS_DIR / "node_modules" / SERVER_EVERYTHING
    if _installed_npm_version(package) != SERVER_EVERYTHING_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            raise PeerMissing(f"npm is not on PATH: it installs {SERVER_EVERYTHING} (apt-get install npm)")
        node()
        spec = f"{SERVER_EVERYTHING}@{SERVER_EVERYTHING_VERSION}"
        _say(f"installing {spec} into {PEERS_DIR}")
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        # stdout to stderr: the benchmark's stdout carries only its JSON document.
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PEERS_DIR), spec],
            check=True,
            stdout=sys.stderr,
        )
    return package / "dist" / "index.js"


def _installed_npm_version(package: Path) -> str | None:
    try:
        return json.loads((package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def mcp_proxy() -> Path:
    """The pinned `mcp-proxy` console script in its own venv, created and installed if absent."""
    script = MCP_PROXY_VENV / "bin" / "mcp-proxy"
    if mcp_proxy_versions().get(MCP_PROXY) != MCP_PROXY_VERSION:
        python = MCP_PROXY_VENV / "bin" / "python"
        if not python.exists():
            _say(f"creating a venv for {MCP_PROXY} at {MCP_PROXY_VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(MCP_PROXY_VENV)], check=True, stdout=sys.stderr)
        _say(f"installing {MCP_PROXY}=={MCP_PROXY_VERSION} into {MCP_PROXY_VENV}")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"{MCP_PROXY}=={MCP_PROXY_VERSION}"],
            check=True,
            stdout=sys.stderr,
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

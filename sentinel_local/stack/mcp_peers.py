"""The real MCP servers the tests and the demo put the proxy in front of, installed from npm.

`@modelcontextprotocol/server-everything` (the MCP project's reference server, exercising every
feature of the protocol) is installed once, pinned, into SENTINEL_MCP_PEERS_DIR with the
machine's npm, and run with the machine's node.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from sentinel import settings

SERVER_EVERYTHING = "@modelcontextprotocol/server-everything"
SERVER_EVERYTHING_VERSION = "2026.8.31"


class PeerError(RuntimeError):
    pass


def node() -> str:
    """The machine's node, or PeerError saying it is missing."""
    found = shutil.which("node")
    if found is None:
        raise PeerError("node is not on PATH: the MCP peer tests run @modelcontextprotocol/server-everything with it")
    return found


def server_everything(peers_dir: Path | None = None) -> Path:
    """The entry script of server-everything, installing it on first use."""
    root = peers_dir or settings.MCP_PEERS_DIR
    package = root / "node_modules" / "@modelcontextprotocol" / "server-everything"
    script = package / "dist" / "index.js"
    if script.exists() and f'"version": "{SERVER_EVERYTHING_VERSION}"' in (package / "package.json").read_text():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise PeerError(f"npm is not on PATH: it installs {SERVER_EVERYTHING}@{SERVER_EVERYTHING_VERSION}")
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        npm,
        "install",
        "--prefix",
        str(root),
        "--no-audit",
        "--no-fund",
        f"{SERVER_EVERYTHING}@{SERVER_EVERYTHING_VERSION}",
    ]
    # On stderr: the benchmark's stdout carries only its JSON document.
    print(f"installing an MCP peer: {' '.join(argv)}", file=sys.stderr, flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 or not script.exists():
        raise PeerError(f"npm install failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return script


def server_everything_argv(mode: str = "stdio") -> list[str]:
    """The command line that runs server-everything: `stdio` or `streamableHttp` (on $PORT)."""
    return [node(), str(server_everything()), mode]

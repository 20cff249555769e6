"""`make run`'s demo (`sentinel up --demo`): a real MCP client's call through the proxy, and the
trace it prints, from the client's span down to the linked `clickhouse.insert_batch`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sentinel import semconv
from sentinel_cli import demo
from sentinel_local import processes


def test_the_demo_prints_the_whole_tree(pipeline: None) -> None:
    sentinel = Path(sys.executable).with_name("sentinel")
    done = subprocess.run(
        [str(sentinel), "up", "--demo"],
        env=processes.process_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    tree = output[output.index("\ntrace ") :]
    client_span = f"MCP send tools/call {demo.TOOL}  [{demo.CLIENT_SERVICE}]"
    proxy_span = f"tools/call {demo.TOOL}  [{semconv.SERVICE_PROXY}]"
    # In this order, each under the one before it: the client, the proxy, ingest, the bridge, the
    # insert that links to the event.
    path = [
        client_span,
        proxy_span,
        f"{semconv.SPAN_PUBLISH}  [{semconv.SERVICE_INGEST}]",
        f"{semconv.SPAN_CONSUME}  [{semconv.SERVICE_BRIDGE}]",
        f"{semconv.SPAN_INSERT}  [{semconv.SERVICE_WORKER}]",
    ]
    lines = tree.splitlines()
    found = []
    start = next(i for i, line in enumerate(lines) if client_span in line)
    for line in lines[start:]:
        if len(found) < len(path) and path[len(found)] in line:
            found.append(line)
    assert len(found) == len(path), tree
    indents = [len(line) - len(line.lstrip(" │├└─⇢")) for line in found]
    assert indents == sorted(indents) and len(set(indents)) == len(indents), tree

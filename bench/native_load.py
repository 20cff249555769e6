"""Max-speed HTTP load from the compiled generator in bench/loadgen (Go, standard library only).

The generator shares the 2-core machine with the pipeline it measures, so its own CPU is taken
from the pipeline's: bench/load.py's Python threads spent 100-160 us per single-event request,
a tenth of the machine at ~1,300 requests/s. The Go client posts the same bodies over the same
kind of keep-alive connections for a fraction of that (docs/performance.md). It runs the
max-speed loads only; a fixed offered rate, where the generator's cost is small and its schedule
matters, stays with bench/load.py.

`run_native_load(spec, probes)` has `run_load`'s contract: one process with `spec.connections`
connections, probes on the same queue, a LoadResult.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import PROBE, LoadResult, LoadSpec, merge_results
from sentinel import settings

SOURCE = Path(__file__).resolve().parent / "loadgen"


def binary_path() -> Path:
    """Where the binary built from these sources is: named by their hash, so runs of two commits on
    one stack (--baseline) each use the generator of their own tree."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE.iterdir()):
        if path.suffix == ".go" or path.name == "go.mod":
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return settings.STACK_DIR / "bin" / f"sentinel-loadgen-{digest.hexdigest()[:12]}"


def build() -> Path:
    """The generator's binary, built on first use; returns its path.

    Standard library only: `go build` needs no network. Raises RuntimeError when Go is missing or
    the build fails.
    """
    target = binary_path()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the load generator needs Go (`go` on PATH); or run with --load-generator python")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    built = subprocess.run(
        [go, "build", "-o", str(target), "."], cwd=SOURCE, env=env, capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise RuntimeError(f"building bench/loadgen failed:\n{built.stdout}{built.stderr}")
    return target


def run_native_load(spec: LoadSpec, probes: Any | None, *, start_timeout_s: float = 30.0) -> LoadResult:
    """Post `spec` at max speed from the compiled generator; blocks until it finishes.

    Raises ValueError for a fixed-rate spec, RuntimeError if the generator fails or hangs.
    """
    if spec.rate_eps is not None:
        raise ValueError("the compiled generator posts at max speed only; fixed rates use bench.load.run_load")
    argv = [
        str(build()),
        f"-url={spec.url}",
        f"-type={spec.event_type}",
        f"-batch={spec.batch_size}",
        f"-conns={spec.connections}",
        f"-max-events={spec.max_events}",
        f"-max-seconds={spec.max_seconds}",
        f"-probe-every={spec.probe_every}",
    ]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    started = threading.Event()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, probes, lines, started), daemon=True)
    reader.start()
    try:
        if not started.wait(start_timeout_s) or lines[:1] != ["ready"]:
            proc.kill()
            raise RuntimeError(f"load generator did not start: {lines[:1]} {_stderr(proc)}")
        # Slightly ahead, like run_load: the generator is waiting on the clock, not on the pipe.
        proc.stdin.write(f"{time.monotonic() + 0.05:.6f}\n")
        proc.stdin.close()
        try:
            proc.wait(timeout=spec.max_seconds + 120.0)
        except subprocess.TimeoutExpired:
            raise RuntimeError("load generator hung") from None
        reader.join(timeout=10)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed (exit {proc.returncode}): {_stderr(proc)}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results = [line for line in lines if line.startswith("result ")]
    if len(results) != 1:
        raise RuntimeError(f"load generator gave no result: {lines[-3:]}")
    return result_from(json.loads(results[0].removeprefix("result ")))


def result_from(document: dict[str, Any]) -> LoadResult:
    """A LoadResult from the generator's result line (its connections already summed)."""
    partial = {**document, "late_requests": 0, "lags_ms": []}
    result = merge_results([partial])
    result.cpu_s = round(float(document["cpu_s"]), 2)
    return result


def parse_probes(line: str) -> list[tuple[float, str]]:
    """`probe <t> <id> <t> <id> ...` as (send time, event id) pairs."""
    fields = line.split()[1:]
    if len(fields) % 2:
        raise ValueError(f"odd probe line: {line[:200]!r}")
    return [(float(fields[i]), fields[i + 1]) for i in range(0, len(fields), 2)]


def _read_lines(stdout: Any, probes: Any | None, lines: list[str], started: threading.Event) -> None:
    """Forward probes to the queue, keep every other line; `started` is set at the first line or at
    the end of the output, whichever comes first."""
    try:
        for raw in stdout:
            line = raw.rstrip("\n")
            if line.startswith("probe "):
                if probes is not None:
                    probes.put((PROBE, parse_probes(line)))
            else:
                lines.append(line)
                started.set()
    finally:
        started.set()


def _stderr(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    proc.wait()
    err = proc.stderr.read()
    return err[-2000:] if err else ""

"""`python -m bench.proxy`: what the Sentinel MCP proxy adds to a `tools/call`, beside a direct call
and beside `mcp-proxy` from PyPI (which audits nothing), measured in the same run.

The client is the official `mcp` SDK (ClientSession over its stdio and Streamable HTTP transports);
the upstream is `@modelcontextprotocol/server-everything`, pinned, on the machine's Node.js; the
tool is its `echo`. Every path's session is opened and warmed up first, then in each round every
path runs N sequential calls (latency) and N calls with K in flight on its one session (calls/s at
saturation). Rounds rotate the order of the paths (A B C, B C A, ...), so the host's drift over the
run, on two shared cores, is spread over every path instead of falling on one.

The setups, per transport (client -> ... -> server):

stdio
  direct        client -stdio-> server-everything (stdio)
  sentinel      client -stdio-> `sentinel proxy -- node server-everything stdio` -stdio-> server
  (mcp-proxy has no stdio -> stdio mode: its stdio side only reaches a remote HTTP/SSE server, so
  it has no stdio setup comparable with these two and is not run over stdio.)
http (Streamable HTTP)
  direct        client -HTTP-> server-everything's own Streamable HTTP mode (`streamableHttp`)
  mcp-proxy     client -HTTP-> `mcp-proxy --port P -- node server-everything stdio` -stdio-> server
  sentinel      client -HTTP-> `sentinel proxy --http` (config: `command`) -stdio-> server:
                mcp-proxy's setup, so calls/s and latency compare with it one to one
  sentinel-url  client -HTTP-> `sentinel proxy --http` (config: `url`) -HTTP-> server-everything's
                own HTTP: one more hop in front of the direct path, so its added latency is the
                proxy's alone. mcp-proxy and `sentinel` also swap the server's HTTP side for
                stdio, and their "added" latency carries that difference too.

Beside the wall-clock figures, each round records CPU ms per call of each path's processes (the
proxy and the MCP server below it, from /proc) and of the client: the time they ran, which a busy
host disturbs far less than the time they waited for a core.

What is common to every path and so cancels out of the added latency and the ratios: the Python
client's own cost per call (the SDK's session and transport, pydantic validation; at saturation the
client shares the two cores with what it measures), and the server's work. One exception, measured
rather than assumed: against server-everything's own HTTP the SDK client closes its connection after
each call's SSE response (a TIME-WAIT per call on the client's side; a handful through mcp-proxy),
so direct HTTP pays a TCP connect per call and about twice the client CPU of mcp-proxy's path. That
is why direct HTTP is slower here than HTTP -> proxy -> stdio, and why sentinel-url, whose own leg to
the server pays the same connect, is the path that measures the hop. mcp-proxy runs at
`--log-level WARNING`, so that a line per request does not handicap the baseline. The Sentinel
proxy posts an audit event per call to SENTINEL_INGEST_URL as it is configured by the environment;
the document records whether ingest answered, since with ingest down its events go to its spool.

Prints one JSON document on stdout (progress on stderr), with the targets: p50 added <= 0.5 ms and
p99 added <= 2 ms over direct, and sentinel calls/s >= mcp-proxy's. Exits 1 if a path failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from bench import mcp_peers
from bench.cpu import tree_cpu_s
from bench.proxy_report import DIRECT, MCP_PROXY, SENTINEL, SENTINEL_URL, Measured, build_document
from bench.report import target_lines
from bench.rss import descendants
from sentinel import settings
from sentinel_local.stack import mcp_peers as peers
from sentinel_local.stack.runner import free_port

TRANSPORTS = ("stdio", "http")
PATHS = (DIRECT, MCP_PROXY, SENTINEL, SENTINEL_URL)
# Which paths have a setup over each transport (see the module docstring).
APPLICABLE = {"stdio": (DIRECT, SENTINEL), "http": PATHS}
SENTINEL_PATHS = (SENTINEL, SENTINEL_URL)
DEFAULT_SENTINEL_CMD = f"{shlex.quote(sys.executable)} -m mcp_proxy"
TOOL = "echo"
ARGUMENTS = {"message": "sentinel proxy benchmark"}
SERVER_NAME = "everything"  # the server's name in the sentinel proxy's config and audit events
URL_SERVER_NAME = "everything-url"
LOG_DIR = settings.STACK_DIR / "bench" / "proxy-logs"
READY_TIMEOUT_S = 30.0
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
CALL_TIMEOUT_S = 30.0  # one request's; a hung path fails instead of hanging the run


@dataclass(frozen=True)
class Sizes:
    calls: int  # per path per round, for latency and again for calls/s
    rounds: int
    concurrency: int  # calls in flight on one session at saturation
    warmup: int  # calls per path before the first round


FULL = Sizes(calls=1000, rounds=5, concurrency=16, warmup=200)
QUICK = Sizes(calls=200, rounds=2, concurrency=8, warmup=50)


@dataclass(frozen=True)
class Options:
    sizes: Sizes
    paths: tuple[str, ...]
    transports: tuple[str, ...]
    sentinel_cmd: tuple[str, ...]
    mode: str

    def runs(self) -> list[tuple[str, str]]:
        """(transport, path) pairs to measure: the chosen ones that have a setup."""
        return [(t, p) for t in self.transports for p in APPLICABLE[t] if p in self.paths]


def log(message: str) -> None:
    """Progress on stderr; stdout carries only the JSON document."""
    print(f"[bench.proxy {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"small counts ({QUICK})")
    parser.add_argument(
        "--calls", type=int, help=f"calls per path per round (default {FULL.calls}, quick {QUICK.calls})"
    )
    parser.add_argument("--rounds", type=int, help=f"rounds (default {FULL.rounds}, quick {QUICK.rounds})")
    parser.add_argument(
        "--concurrency",
        type=int,
        help=f"calls in flight on one session at saturation (default {FULL.concurrency}, quick {QUICK.concurrency})",
    )
    parser.add_argument("--warmup", type=int, help=f"calls per path before the first round (default {FULL.warmup})")
    parser.add_argument("--paths", type=names(PATHS), default=PATHS, help=f"subset of {','.join(PATHS)}")
    parser.add_argument(
        "--transport", type=names(TRANSPORTS), default=TRANSPORTS, help=f"subset of {','.join(TRANSPORTS)}"
    )
    parser.add_argument(
        "--sentinel-cmd",
        default=DEFAULT_SENTINEL_CMD,
        help="the command that starts the Sentinel proxy, before its own arguments "
        f"(default: {DEFAULT_SENTINEL_CMD}; `sentinel proxy` works too)",
    )
    return parser


def names(allowed: tuple[str, ...]) -> Any:
    """An argparse type: a comma-separated, non-empty subset of `allowed`, kept in `allowed`'s order."""

    def parse(raw: str) -> tuple[str, ...]:
        chosen = {n.strip() for n in raw.split(",") if n.strip()}
        unknown = sorted(chosen - set(allowed))
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {raw!r}")
        return tuple(n for n in allowed if n in chosen)

    return parse


def options_from(args: argparse.Namespace) -> Options:
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        calls=args.calls or base.calls,
        rounds=args.rounds or base.rounds,
        concurrency=args.concurrency or base.concurrency,
        warmup=base.warmup if args.warmup is None else args.warmup,
    )
    return Options(
        sizes=sizes,
        paths=args.paths,
        transports=args.transport,
        sentinel_cmd=tuple(shlex.split(args.sentinel_cmd)),
        mode="quick" if args.quick else "full",
    )


class SentinelProxyMissing(RuntimeError):
    """The Sentinel proxy's command does not run here."""


def check_sentinel(cmd: Sequence[str]) -> None:
    """Raise SentinelProxyMissing, saying what to do, unless `CMD --help` runs and exits 0."""
    try:
        done = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        reason = str(exc)
    else:
        if done.returncode == 0:
            return
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
    raise SentinelProxyMissing(
        f"the Sentinel MCP proxy is not available: `{shlex.join([*cmd, '--help'])}` failed: {reason}. "
        "It is the package mcp_proxy (`sentinel proxy`); without it, run with "
        f"--paths {DIRECT},{MCP_PROXY}, or point --sentinel-cmd at it."
    )


@dataclass
class Servers:
    """The HTTP-facing processes of a run, each in its own process group so that stopping it stops
    the server it spawned too."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with (LOG_DIR / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.argv[name] = argv
        wait_listening(port, self.processes[name], name)

    def stop(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; killing its process group")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_listening(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    """Block until 127.0.0.1:port accepts a connection; raise if the process exits or READY_TIMEOUT_S passes."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before listening; see {LOG_DIR / name}.log")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"{name} was not listening on port {port} after {READY_TIMEOUT_S:.0f}s; see {LOG_DIR / name}.log"
    )


@dataclass(frozen=True)
class Endpoints:
    """How the client reaches each (transport, path): a stdio command or a Streamable HTTP URL, and
    the pids of the processes that serve each HTTP path (whose trees hold the MCP server too)."""

    stdio: dict[str, list[str]]
    http: dict[str, str]
    http_roots: dict[str, tuple[int, ...]]


@contextlib.contextmanager
def serving(options: Options, script: Path, errors: list[str]) -> Iterator[tuple[Endpoints, Servers]]:
    """Start the HTTP-facing servers the chosen paths need; yield where each path is reached. A
    server that does not start is recorded in `errors`, and its paths have no endpoint."""
    runs = options.runs()
    node = peers.node()
    server_stdio = [node, str(script), "stdio"]
    stdio: dict[str, list[str]] = {}
    http: dict[str, str] = {}
    for transport, path in runs:
        if transport == "stdio" and path == DIRECT:
            stdio[path] = server_stdio
        elif transport == "stdio" and path == SENTINEL:
            stdio[path] = [*options.sentinel_cmd, "--name", SERVER_NAME, "--", *server_stdio]
    servers = Servers()

    def start(name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> bool:
        # A server that does not come up costs its own paths, not the run's other figures.
        try:
            servers.start(name, argv, port, env)
        except (OSError, RuntimeError) as exc:
            errors.append(f"{name}: {exc}")
            log(f"{name} did not start: {exc}")
            return False
        return True

    try:
        http_paths = {p for t, p in runs if t == "http"}
        if http_paths & {DIRECT, SENTINEL_URL}:
            port = free_port()
            if start("server-everything-http", [node, str(script), "streamableHttp"], port, {"PORT": str(port)}):
                http[DIRECT] = f"http://127.0.0.1:{port}/mcp"
        if MCP_PROXY in http_paths:
            port = free_port()
            argv = [str(mcp_peers.mcp_proxy()), "--host", "127.0.0.1", "--port", str(port)]
            if start(MCP_PROXY, [*argv, "--log-level", "WARNING", "--", *server_stdio], port):
                http[MCP_PROXY] = f"http://127.0.0.1:{port}/mcp"
        if http_paths & set(SENTINEL_PATHS):
            port = free_port()
            config = {"mcpServers": {SERVER_NAME: {"command": node, "args": [str(script), "stdio"]}}}
            if SENTINEL_URL in http_paths and DIRECT in http:
                config["mcpServers"][URL_SERVER_NAME] = {"url": http[DIRECT]}
            config_path = LOG_DIR / "sentinel-proxy-config.json"
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            config_path.write_text(json.dumps(config, indent=2))
            argv = [*options.sentinel_cmd, "--http", f"127.0.0.1:{port}", "--config", str(config_path)]
            if start("sentinel-proxy-http", argv, port):
                http[SENTINEL] = f"http://127.0.0.1:{port}/mcp/{SERVER_NAME}"
                if URL_SERVER_NAME in config["mcpServers"]:
                    http[SENTINEL_URL] = f"http://127.0.0.1:{port}/mcp/{URL_SERVER_NAME}"
        pid = {name: process.pid for name, process in servers.processes.items()}
        roots = {
            DIRECT: (pid.get("server-everything-http"),),
            MCP_PROXY: (pid.get(MCP_PROXY),),
            SENTINEL: (pid.get("sentinel-proxy-http"),),
            # The hop and the server's own HTTP behind it.
            SENTINEL_URL: (pid.get("sentinel-proxy-http"), pid.get("server-everything-http")),
        }
        http_roots = {path: tuple(p for p in pids if p is not None) for path, pids in roots.items() if path in http}
        yield Endpoints(stdio=stdio, http=http, http_roots=http_roots), servers
    finally:
        servers.stop()


@contextlib.asynccontextmanager
async def session(transport: str, path: str, endpoints: Endpoints, errlog: TextIO) -> AsyncIterator[ClientSession]:
    """An initialized client session over one path; the stdio transport owns its child process."""
    async with contextlib.AsyncExitStack() as stack:
        if transport == "stdio":
            command, *args = endpoints.stdio[path]
            # The whole environment, as a shell would pass it: the SDK passes only a safe few by
            # default, and the Sentinel proxy reads SENTINEL_* and OTEL_* from it.
            params = StdioServerParameters(command=command, args=args, env=dict(os.environ))
            read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        else:
            read, write = await stack.enter_async_context(streamable_http_client(endpoints.http[path]))
        client = await stack.enter_async_context(ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S))
        await client.initialize()
        yield client


async def call(client: ClientSession) -> None:
    result = await client.call_tool(TOOL, ARGUMENTS)
    if result.is_error:
        raise RuntimeError(f"{TOOL} answered with an error: {result.content}")


def cpu_s(roots: Sequence[int]) -> float:
    """CPU seconds used so far by the process trees under `roots`."""
    return sum(sum(tree_cpu_s(root).values()) for root in roots)


def children() -> set[int]:
    """Pids of this process's children: a stdio session's server is the child it adds."""
    me = os.getpid()
    return {pid for pid in descendants(me) if pid != me and _parent(pid) == me}


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


async def sequential(client: ClientSession, calls: int) -> tuple[float, ...]:
    """Seconds of each of `calls` calls made one after another."""
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        await call(client)
        out.append(time.perf_counter() - start)
    return tuple(out)


async def saturated(client: ClientSession, calls: int, concurrency: int) -> float:
    """Calls/s of `calls` calls with `concurrency` of them in flight at a time on one session."""
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call(client)

    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    return calls / (time.perf_counter() - start)


def rotation(items: Sequence[Any], round_no: int) -> list[Any]:
    """`items` started `round_no - 1` places further on: each round begins with another path."""
    shift = (round_no - 1) % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


async def measure(options: Options, endpoints: Endpoints, errors: list[str]) -> list[Measured]:
    """Open and warm up every path's session, then run the rounds; a path that fails is recorded in
    `errors` and left out of the rounds after it."""
    sizes = options.sizes
    batch_timeout_s = 120.0 + sizes.calls * 0.1
    measured: list[Measured] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / "stdio-servers.log").open("w") as errlog:
        async with contextlib.AsyncExitStack() as stack:
            sessions: dict[tuple[str, str], ClientSession] = {}
            roots: dict[tuple[str, str], tuple[int, ...]] = {}
            for transport, path in options.runs():
                if transport == "http" and path not in endpoints.http:
                    continue  # its server did not start: already in errors
                before = children()
                try:
                    # No timeout scope around the entry: the session's task groups outlive it. Its
                    # requests time out on their own (CALL_TIMEOUT_S).
                    client = await stack.enter_async_context(session(transport, path, endpoints, errlog))
                    with anyio.fail_after(batch_timeout_s):
                        await sequential(client, sizes.warmup)
                except Exception as exc:  # noqa: BLE001 - one broken path must not lose the others' figures
                    errors.append(f"{transport}/{path} session: {describe(exc)}")
                    log(f"{transport}/{path}: could not open a session: {describe(exc)}")
                    continue
                sessions[(transport, path)] = client
                if transport == "stdio":
                    roots[(transport, path)] = tuple(children() - before)
                else:
                    roots[(transport, path)] = endpoints.http_roots[path]
                log(f"{transport}/{path}: session open, {sizes.warmup} warm-up calls done")
            for round_no in range(1, sizes.rounds + 1):
                for key in rotation(list(sessions), round_no):
                    transport, path = key
                    if key not in sessions:
                        continue
                    try:
                        server_cpu, client_cpu = cpu_s(roots[key]), time.process_time()
                        with anyio.fail_after(batch_timeout_s):
                            latencies = await sequential(sessions[key], sizes.calls)
                            calls_per_s = await saturated(sessions[key], sizes.calls, sizes.concurrency)
                        per_call = 1000.0 / (2 * sizes.calls)
                        server_cpu_ms = (cpu_s(roots[key]) - server_cpu) * per_call
                        client_cpu_ms = (time.process_time() - client_cpu) * per_call
                    except Exception as exc:  # noqa: BLE001 - as above
                        errors.append(f"{transport}/{path} round {round_no}: {describe(exc)}")
                        log(f"{transport}/{path} round {round_no} failed: {describe(exc)}")
                        del sessions[key]
                        continue
                    measured.append(
                        Measured(transport, path, round_no, latencies, calls_per_s, server_cpu_ms, client_cpu_ms)
                    )
                    ordered = sorted(latencies)
                    log(
                        f"round {round_no} {transport}/{path}: p50 {ordered[len(ordered) // 2] * 1000:.3f} ms, "
                        f"{calls_per_s:,.0f} calls/s at {sizes.concurrency} in flight, CPU per call "
                        f"{server_cpu_ms:.3f} ms proxy+server, {client_cpu_ms:.3f} ms client"
                    )
    return measured


def describe(exc: BaseException) -> str:
    """The innermost errors of an exception group (what anyio's task groups raise), or the exception."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def ingest_reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def versions() -> dict[str, Any]:
    node = subprocess.run([peers.node(), "--version"], capture_output=True, text=True, check=False)
    return {
        "server_everything": peers.SERVER_EVERYTHING_VERSION,
        "node": node.stdout.strip(),
        "mcp_sdk_client": metadata.version("mcp"),
        "mcp_proxy": mcp_peers.mcp_proxy_versions(),
    }


def run(options: Options) -> dict[str, Any]:
    """Measure every chosen path and return the document. Raises SentinelProxyMissing when a
    Sentinel path is chosen and its command does not run, peers.PeerError without node/npm."""
    from bench.__main__ import machine_info

    started = time.monotonic()
    machine = machine_info()
    if set(options.paths) & set(SENTINEL_PATHS):
        check_sentinel(options.sentinel_cmd)
    script = peers.server_everything()
    errors: list[str] = []
    log(f"{options.mode} run: {options.sizes}, paths {[f'{t}/{p}' for t, p in options.runs()]}")
    with serving(options, script, errors) as (endpoints, servers):
        measured = anyio.run(measure, options, endpoints, errors)
        launched = {name: shlex.join(argv) for name, argv in servers.argv.items()}
    config = {
        "mode": options.mode,
        "tool": TOOL,
        "arguments": ARGUMENTS,
        "calls_per_path_per_round": options.sizes.calls,
        "rounds": options.sizes.rounds,
        "concurrency": options.sizes.concurrency,
        "warmup_calls": options.sizes.warmup,
        "paths": [f"{t}/{p}" for t, p in options.runs()],
        "sentinel_cmd": shlex.join(options.sentinel_cmd),
        "stdio_commands": {p: shlex.join(argv) for p, argv in endpoints.stdio.items()},
        "http_servers": launched,
        "http_urls": endpoints.http,
        "versions": versions(),
        "ingest_url": settings.INGEST_URL,
        "ingest_reachable_at_start": ingest_reachable(settings.INGEST_URL),
        "otel_env": {k: v for k, v in os.environ.items() if k in ("OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER")},
        "notes": [
            "added latency = a path's percentile minus the direct path's over the same transport",
            "the client's own cost per call is common to every path; at saturation it shares the cores",
            "over HTTP, mcp-proxy and sentinel reach the server over stdio, direct and sentinel-url over "
            "its own Streamable HTTP: sentinel-url's added latency is the proxy hop alone",
            "the SDK client reconnects per call to server-everything's own HTTP (direct, and sentinel-url's "
            "upstream leg), not through mcp-proxy: see cpu_ms_per_call.*.client",
            f"cpu_ms_per_call resolves {1000 / TICKS_PER_S / (2 * options.sizes.calls):.3f} ms: "
            "the kernel's CPU-time ticks spread over a round's 2 x calls",
            "mcp-proxy has no stdio -> stdio mode and is measured over HTTP only",
        ],
    }
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return build_document(
        machine=machine,
        config=config,
        measured=measured,
        duration_s=time.monotonic() - started,
        errors=errors,
    )


def main(argv: list[str] | None = None) -> int:
    options = options_from(build_parser().parse_args(argv))
    try:
        document = run(options)
    except (SentinelProxyMissing, peers.PeerError) as exc:
        print(f"bench.proxy: {exc}", file=sys.stderr)
        return 2
    for line in target_lines(document["targets"]):
        log(line)
    print(json.dumps(document, indent=2))
    return 1 if document["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

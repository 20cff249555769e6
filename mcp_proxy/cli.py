"""The proxy's command line, shared by `python -m mcp_proxy` and `sentinel proxy`.

    python -m mcp_proxy [--name NAME] [options] -- COMMAND [ARGS...]      stdio
    python -m mcp_proxy --http HOST:PORT --config FILE [options]          Streamable HTTP

Logs go to stderr: in stdio mode stdout is the MCP wire.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import anyio

from mcp_proxy import audit
from mcp_proxy.audit import CapturePolicy
from mcp_proxy.emitter import Emitter, EmitterConfig
from mcp_proxy.session import ProxyOptions
from mcp_proxy.upstream import ConfigError, StdioUpstream, load_config
from sentinel import metrics, semconv, settings
from sentinel.telemetry import setup_tracing

log = logging.getLogger("mcp_proxy")

# How long a thread may hold the GIL while another waits for it (Python's default is 5 ms). The
# event loop's thread carries every call and gives the GIL up at each pipe read and write; the span
# exporter's and the emitter's threads encode and post in bursts of pure Python, and during a burst
# each of those takes up to this long to get the GIL back. Over stdio, in five alternating pairs of
# 3 x 1,000 calls, 0.1 ms gave a lower p99 added than 0.5 ms in four (4.1-12.2 ms against
# 8.5-14.7, on a host at load 4-15); 0.05 ms was worse than either.
GIL_SWITCH_INTERVAL_S = 0.0001


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="the server's name in audit events (stdio; default: from the command)")
    parser.add_argument("--http", metavar="HOST:PORT", help="serve Streamable HTTP here, a server per --config entry")
    parser.add_argument("--config", type=Path, help="an mcpServers JSON file (with --http)")
    parser.add_argument(
        "--capture-arguments",
        choices=audit.CAPTURE_MODES,
        default="masked",
        help="what audit events keep of request arguments (default: masked)",
    )
    parser.add_argument(
        "--capture-results", action="store_true", help="keep results in audit events, truncated (default: size only)"
    )
    parser.add_argument(
        "--principal", help="who calls: stdio default the OS user; HTTP default an id derived from the bearer token"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]: the upstream server (stdio)")


def options_from(args: argparse.Namespace) -> ProxyOptions:
    return ProxyOptions(
        policy=CapturePolicy(args.capture_arguments, args.capture_results, settings.PROXY_CAPTURE_MAX_BYTES),
        principal=args.principal,
        timeout_s=settings.PROXY_REQUEST_TIMEOUT_S,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="sentinel-proxy %(levelname)s %(message)s")
    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if bool(args.http) == bool(command):
        print(
            "sentinel proxy: give either -- COMMAND [ARGS...] (stdio) or --http HOST:PORT --config FILE",
            file=sys.stderr,
        )
        return 2
    if args.http and args.config is None:
        print("sentinel proxy: --http needs --config FILE", file=sys.stderr)
        return 2
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    setup_tracing(semconv.SERVICE_PROXY)
    emitter = Emitter(EmitterConfig.from_settings())
    emitter.start()
    options = options_from(args)
    try:
        if args.http:
            return _run_http(args.http, args.config, options, emitter)
        upstream = StdioUpstream(command[0], tuple(command[1:]))
        from mcp_proxy.stdio_mode import default_name, run_stdio

        if settings.PROXY_METRICS_PORT:
            metrics.serve(settings.PROXY_METRICS_PORT)
        anyio.run(run_stdio, upstream, args.name or default_name(upstream), options, emitter.submit)
        return 0
    finally:
        emitter.close()
        _flush_tracing()


def _run_http(address: str, config: Path, options: ProxyOptions, emitter: Emitter) -> int:
    from mcp_proxy.http_mode import serve_http

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        print(f"sentinel proxy: --http wants HOST:PORT, not {address!r}", file=sys.stderr)
        return 2
    try:
        servers = load_config(config)
    except ConfigError as exc:
        print(f"sentinel proxy: {exc}", file=sys.stderr)
        return 2
    serve_http(host, int(port), servers, options, emitter.submit)
    return 0


def _flush_tracing() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if callable(force_flush):
        force_flush()

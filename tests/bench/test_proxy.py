"""bench.proxy: its options, the message when the Sentinel proxy is absent, and one short real run
(direct and mcp-proxy, a few calls, real server-everything on Node.js) whose document has every field
with sane values. No timing is asserted: the figures belong to the host."""

from __future__ import annotations

import json
import sys

import pytest

from bench import mcp_peers
from bench.proxy import (
    DEFAULT_SENTINEL_CMD,
    SentinelProxyMissing,
    build_parser,
    check_sentinel,
    main,
    options_from,
    rotation,
)
from sentinel_local.stack import mcp_peers as peers


def test_options_default_to_every_path_and_transport_and_the_module_as_sentinel() -> None:
    options = options_from(build_parser().parse_args([]))
    assert options.paths == ("direct", "mcp-proxy", "sentinel", "sentinel-url")
    assert options.transports == ("stdio", "http")
    assert options.sentinel_cmd == (sys.executable, "-m", "mcp_proxy")
    assert DEFAULT_SENTINEL_CMD.endswith(" -m mcp_proxy")
    # mcp-proxy and sentinel-url have no stdio setup.
    assert options.runs() == [
        ("stdio", "direct"),
        ("stdio", "sentinel"),
        ("http", "direct"),
        ("http", "mcp-proxy"),
        ("http", "sentinel"),
        ("http", "sentinel-url"),
    ]


def test_options_take_subsets_in_canonical_order_and_sizes() -> None:
    args = ["--quick", "--paths", "mcp-proxy,direct", "--transport", "http", "--calls", "7", "--concurrency", "3"]
    options = options_from(build_parser().parse_args(args))
    assert options.paths == ("direct", "mcp-proxy")
    assert options.runs() == [("http", "direct"), ("http", "mcp-proxy")]
    assert (options.sizes.calls, options.sizes.concurrency, options.mode) == (7, 3, "quick")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--paths", "direct,nginx"])


def test_rotation_starts_each_round_one_path_further_on() -> None:
    assert [rotation("abc", n) for n in (1, 2, 3, 4)] == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert rotation([], 3) == []


def test_a_missing_sentinel_proxy_is_named_with_what_to_run_instead(capsys: pytest.CaptureFixture[str]) -> None:
    cmd = [sys.executable, "-m", "bench_no_such_proxy_module"]
    with pytest.raises(SentinelProxyMissing, match="No module named bench_no_such_proxy_module") as raised:
        check_sentinel(cmd)
    assert "--paths direct,mcp-proxy" in str(raised.value)
    assert main(["--paths", "direct,sentinel", "--sentinel-cmd", " ".join(cmd)]) == 2
    assert "the Sentinel MCP proxy is not available" in capsys.readouterr().err


def test_a_short_real_run_prints_one_document_with_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        peers.node()
        peers.server_everything()
    except peers.PeerError as exc:
        pytest.fail(f"this test runs server-everything on the machine's Node.js: {exc}")
    code = main(["--paths", "direct,mcp-proxy", "--calls", "5", "--rounds", "2", "--warmup", "2", "--concurrency", "3"])
    out = capsys.readouterr().out
    document = json.loads(out)  # stdout is the document alone; progress went to stderr
    assert code == 0, document["errors"]
    assert document["errors"] == []
    assert document["config"]["paths"] == ["stdio/direct", "http/direct", "http/mcp-proxy"]
    assert document["config"]["versions"]["mcp_proxy"]["mcp-proxy"] == mcp_peers.MCP_PROXY_VERSION
    assert document["config"]["versions"]["mcp_proxy"]["mcp"].startswith("1.")  # why it has a venv of its own
    for transport, path in (("stdio", "direct"), ("http", "direct"), ("http", "mcp-proxy")):
        latency = document["latency_ms"][transport][path]
        assert latency["n"] == 10
        assert 0 < latency["p50"] <= latency["p99"]
        calls = document["calls_per_s"][transport][path]
        assert len(calls["rounds"]) == 2
        assert calls["median"] > 0
        cpu = document["cpu_ms_per_call"][transport][path]
        # CPU time is counted in ticks of 10 ms: a few calls may round down to none.
        assert cpu["server_side"] >= 0 and cpu["client"] >= 0
    added = document["added_latency_ms"]["http"]["mcp-proxy"]
    assert isinstance(added["p50"], float) and isinstance(added["p99"], float)
    assert len(added["rounds"]) == 2
    assert document["ratios"]["http"]["mcp-proxy/direct"]["calls_per_s"] > 0
    assert document["added_latency_ms"]["stdio"] == {}
    # Sentinel's targets are not measured in a run without it.
    assert {t["met"] for t in document["targets"].values()} == {None}

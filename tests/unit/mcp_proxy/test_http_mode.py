"""HTTP mode's principal and routes."""

from __future__ import annotations

from starlette.datastructures import Headers

from mcp_proxy import audit
from mcp_proxy.http_mode import build_app, principal_of
from mcp_proxy.session import ProxyOptions
from mcp_proxy.upstream import HttpUpstream


def test_the_principal_is_derived_from_the_bearer_token_never_the_token() -> None:
    principal = principal_of(Headers({"authorization": "Bearer s3cr3t"}), "configured")
    assert principal == audit.principal_for_token("s3cr3t")
    assert "s3cr3t" not in (principal or "")


def test_without_a_token_the_principal_is_the_configured_one() -> None:
    assert principal_of(Headers({}), "ops") == "ops"
    assert principal_of(Headers({"authorization": "Basic abc"}), None) is None


def test_each_server_has_its_route() -> None:
    app = build_app({"a": HttpUpstream("http://x/mcp"), "b": HttpUpstream("http://y/mcp")}, ProxyOptions(), print)
    paths = {route.path for route in app.routes}  # type: ignore[attr-defined]
    assert {"/mcp/a", "/mcp/b", "/healthz", "/metrics"} <= paths

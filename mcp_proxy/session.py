"""One client session end to end: connect its upstream, relay until either side closes.

Shared by both modes: stdio has one session per process, HTTP one per MCP session id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mcp_proxy.audit import CapturePolicy, SessionInfo
from mcp_proxy.relay import Relay, Submit
from mcp_proxy.side import Side
from mcp_proxy.upstream import Upstream, connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyOptions:
    policy: CapturePolicy = field(default_factory=CapturePolicy)
    principal: str | None = None  # --principal
    timeout_s: float = 0.0


async def serve(client: Side, upstream: Upstream, session: SessionInfo, options: ProxyOptions, submit: Submit) -> None:
    """Relay `client` to a new connection to `upstream`.

    Returns when either side has closed, with every request audited and every request of the
    client's either answered or answered for (the upstream gone). Never raises for an upstream
    that fails: later, that ends the session; at start, every request of the client is answered
    with an error saying why, until the client closes.
    """
    relay = Relay(session, options.policy, submit, timeout_s=options.timeout_s)
    started = False
    try:
        async with connect(upstream) as upstream_side:
            started = True
            await relay.run(client, upstream_side)
    except Exception as exc:
        # An upstream failing is an outcome of the session, answered to the client below.
        log.warning("upstream %s failed: %s", session.server, exc)
        log.debug("upstream %s failure", session.server, exc_info=True)
        if not started:
            await relay.refuse(client, f"upstream MCP server {session.server!r} could not be started: {exc}")
            return
    await relay.upstream_gone(client)

"""`python -m tests.integration.emitter_child SPOOL_DIR INGEST_URL COUNT`: a process that uses the
emitter as the proxy does, for a test to SIGKILL. It submits COUNT events, prints their ids (one JSON
array), waits until the spool holds them all and prints "spooled", then keeps submitting until it
is killed, so the kill lands in the middle of the emitter's work."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson
from prometheus_client import REGISTRY

from mcp_proxy.emitter import Emitter, EmitterConfig
from sentinel_cli.emit import audit_event


def spooled() -> float:
    return REGISTRY.get_sample_value("sentinel_proxy_events_spooled_total") or 0.0


def main() -> None:
    spool_dir, url, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    config = EmitterConfig(ingest_url=url, token=None, spool_dir=spool_dir, spool_max_bytes=1 << 30, retry_max_s=0.5)
    emitter = Emitter(config)
    emitter.start()
    events = [audit_event(event_type="emitter.sigkill") for _ in range(count)]
    for event in events:
        emitter.submit(event)
    print(orjson.dumps([event["event_id"] for event in events]).decode(), flush=True)
    while spooled() < count:
        time.sleep(0.01)
    print("spooled", flush=True)
    while True:
        emitter.submit(audit_event(event_type="emitter.sigkill.after"))
        time.sleep(0.001)


if __name__ == "__main__":
    main()

"""The local stack: real Kafka, ClickHouse, RabbitMQ, Redis, Jaeger and the OpenTelemetry Collector
on loopback, no Docker.

`up()` installs what is missing, starts each service, waits until it answers its protocol and
reuses whatever already runs; `down()` stops what we started. The README, the tests and CI all
go through here (`sentinel stack up|down|status`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sentinel_local.stack.clickhouse import ClickHouse
from sentinel_local.stack.jaeger import Jaeger
from sentinel_local.stack.kafka import Kafka
from sentinel_local.stack.otelcol import Otelcol
from sentinel_local.stack.rabbitmq import RabbitMQ
from sentinel_local.stack.redis import Redis
from sentinel_local.stack.runner import Service, ServiceError

__all__ = ["SERVICES", "Service", "ServiceError", "down", "get", "status", "up"]

# The Collector after Jaeger, the backend it exports to.
SERVICES: tuple[Service, ...] = (Kafka(), ClickHouse(), RabbitMQ(), Redis(), Jaeger(), Otelcol())


def get(name: str) -> Service:
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(f"no service named {name!r}; known: {', '.join(s.name for s in SERVICES)}")


def _select(names: Iterable[str] | None) -> list[Service]:
    return list(SERVICES) if not names else [get(n) for n in names]


def up(names: Iterable[str] | None = None, *, echo: bool = True) -> dict[str, float]:
    """Bring services up in order; returns seconds each took. Raises ServiceError naming the one
    that failed, with the last lines of its log."""
    timings: dict[str, float] = {}
    for service in _select(names):
        started = time.monotonic()
        outcome = service.up()
        timings[service.name] = time.monotonic() - started
        if echo:
            where = "  ".join(f"{k}={v}" for k, v in service.addresses().items())
            print(f"{service.name:<11} {outcome:<8} {timings[service.name]:6.1f}s  {where}", flush=True)
    return timings


def down(names: Iterable[str] | None = None, *, echo: bool = True) -> None:
    for service in reversed(_select(names)):
        stopped = service.down()
        if echo:
            print(f"{service.name:<11} {'stopped' if stopped else 'not ours or not running'}", flush=True)


def status() -> dict[str, str]:
    return {service.name: service.status() for service in SERVICES}

"""One clickhouse-driver client per process, made after any fork, and what the server supports."""

from __future__ import annotations

import os

from clickhouse_driver import Client

from sentinel import settings

_client: Client | None = None
_pid = 0


def new_client(**kwargs: object) -> Client:
    return Client(
        settings.CLICKHOUSE_HOST,
        port=settings.CLICKHOUSE_PORT,
        user=settings.CLICKHOUSE_USER,
        password=settings.CLICKHOUSE_PASSWORD,
        connect_timeout=5,
        send_receive_timeout=60,
        **kwargs,
    )


def get_client() -> Client:
    """The process's client. clickhouse-driver clients are not thread-safe; prefork runs one task
    per process at a time, so one per process is enough."""
    global _client, _pid
    if _client is None or _pid != os.getpid():
        _client = new_client()
        _pid = os.getpid()
    return _client


def server_version(client: Client) -> tuple[int, int]:
    """(major, minor) of the connected server."""
    version = client.execute("SELECT version()")[0][0]
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def supports_dedup_token(version: tuple[int, int]) -> bool:
    """`insert_deduplication_token` arrived in 22.2 (with `non_replicated_deduplication_window`
    earlier). The Debian server here is 18.16, where ReplacingMergeTree alone deduplicates."""
    return version >= (22, 2)

"""One clickhouse-driver client per thread, made after any fork, and what the server supports."""

from __future__ import annotations

import os
import threading
import weakref

from clickhouse_driver import Client

from sentinel import settings

# One per thread: clickhouse-driver clients are not thread-safe (two tasks of a thread pool sharing
# one interleave their INSERTs on the connection). Keyed by pid too, so a forked child makes its own.
_local = threading.local()
# What each client's server answered to dedup_supported: the question is a round trip.
_dedup_answers: weakref.WeakKeyDictionary[Client, bool] = weakref.WeakKeyDictionary()


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
    """This thread's client, made on first use in this process."""
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.client = new_client()
        _local.pid = pid
    return _local.client


def server_version(client: Client) -> tuple[int, int]:
    """(major, minor) of the connected server."""
    version = client.execute("SELECT version()")[0][0]
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def supports_dedup_token(version: tuple[int, int]) -> bool:
    """`insert_deduplication_token` arrived in 22.2 (with `non_replicated_deduplication_window`
    earlier). The Debian server here is 18.16, where ReplacingMergeTree alone deduplicates."""
    return version >= (22, 2)


def dedup_supported(client: Client) -> bool:
    """Whether the server behind `client` takes `insert_deduplication_token`; asked once per client."""
    answer = _dedup_answers.get(client)
    if answer is None:
        answer = _dedup_answers[client] = supports_dedup_token(server_version(client))
    return answer

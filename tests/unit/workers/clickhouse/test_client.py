"""workers.clickhouse.client: a client is never shared by two threads or two processes.

clickhouse-driver clients are not thread-safe: with Celery's thread pool, two tasks sharing one
interleaved their INSERTs on the connection, each task reported success, and 40% of a benchmark's
rows were missing. Making a Client opens no connection, so these need no server.
"""

from __future__ import annotations

import threading

import pytest

from workers.clickhouse import client


def test_a_thread_keeps_its_client() -> None:
    assert client.get_client() is client.get_client()


def test_each_thread_gets_its_own_client() -> None:
    mine = client.get_client()
    found: list[object] = []
    other = threading.Thread(target=lambda: found.append(client.get_client()))
    other.start()
    other.join()
    assert len(found) == 1
    assert found[0] is not mine


def test_a_forked_child_makes_its_own_client(monkeypatch: pytest.MonkeyPatch) -> None:
    parents = client.get_client()
    monkeypatch.setattr(client.os, "getpid", lambda: -1)  # as a prefork child sees it after fork
    childs = client.get_client()
    assert childs is not parents
    assert client.get_client() is childs

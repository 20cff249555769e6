"""sentinel_local.stack.kafka.new_cluster_id: a KRaft cluster id the storage tool accepts."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from sentinel_local.stack import kafka

DASHED = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # base64url of 0b111110... starts with '-'
PLAIN = uuid.UUID(bytes=bytes([0x10]) + bytes(15))


def test_an_id_starting_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: Iterator[uuid.UUID] = iter([DASHED, PLAIN])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(DASHED.bytes).decode().startswith("-")
    assert kafka.new_cluster_id() == base64.urlsafe_b64encode(PLAIN.bytes).decode().rstrip("=")


def test_ids_are_22_characters_of_base64url() -> None:
    for _ in range(200):
        cluster_id = kafka.new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert base64.urlsafe_b64decode(cluster_id + "==")

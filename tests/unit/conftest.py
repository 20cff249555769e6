"""Fixtures for the ingest app: a Flask app wired to an in-memory publisher instead of Kafka."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ingest_app import create_app
from ingest_app.publisher import OutgoingMessage, PublishUnavailable


class FakePublisher:
    """Records what ingest publishes; `fail` makes the next publish raise PublishUnavailable."""

    def __init__(self, topic: str = "mcp.events") -> None:
        self.topic = topic
        self.batches: list[list[OutgoingMessage]] = []
        self.fail = False
        self.is_ready = True

    @property
    def messages(self) -> list[OutgoingMessage]:
        return [m for batch in self.batches for m in batch]

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if self.fail:
            raise PublishUnavailable("Kafka did not acknowledge 1 event(s) in 5s")
        self.batches.append(list(messages))

    def ready(self) -> bool:
        return self.is_ready


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def app(publisher: FakePublisher) -> Flask:
    return create_app({"TESTING": True, "SENTINEL_PUBLISHER": publisher, "SENTINEL_TOKENS": ()})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()

"""Chunk acknowledgements from workers back to the bridge that owns the chunk, over Redis.

Each bridge instance reads its own list (`sentinel:acks:<instance>`); a worker pushes the chunk's
token there after the rows are in ClickHouse (or the chunk is dead-lettered). An ack that is lost
(Redis restarted) only delays the commit: the bridge re-sends the chunk after its ack timeout and
ClickHouse deduplicates the rows.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis

from sentinel import settings

ACK_PREFIX = "sentinel:acks:"
ACK_TTL_S = 24 * 3600


def new_ack_key() -> str:
    return f"{ACK_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class AckChannel:
    def __init__(self, url: str = settings.REDIS_URL) -> None:
        self._url = url
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self._url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
            )
        return self._client

    def send(self, key: str, token: str) -> None:
        """Report a chunk done. Raises redis.RedisError; the task then retries (the insert is idempotent)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, token)
        pipe.expire(key, ACK_TTL_S)
        pipe.execute()

    def receive(self, key: str, limit: int = 1000) -> list[str]:
        """Take up to `limit` tokens. Raises redis.RedisError when Redis is unreachable."""
        raw = self.client.lpop(key, limit)
        return [t.decode() for t in raw] if raw else []

    def delete(self, key: str) -> None:
        self.client.delete(key)

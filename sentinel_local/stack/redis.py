"""Redis from Debian's `redis-server`: Celery's result backend and the bridge's acknowledgements."""

from __future__ import annotations

from sentinel import settings
from sentinel_local.stack.runner import Service, apt_install, which


class Redis(Service):
    name = "redis"
    start_timeout = 30.0

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.REDIS_PORT

    def installed(self) -> bool:
        return which("redis-server") is not None

    def install(self) -> None:
        apt_install("redis-server")

    def argv(self) -> list[str]:
        # Append-only file so a restart keeps acknowledgements that were already written.
        return [
            which("redis-server") or "redis-server",
            "--bind",
            settings.HOST,
            "--port",
            str(settings.REDIS_PORT),
            "--dir",
            str(self.home),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]

    def ready(self) -> bool:
        if not super().ready():
            return False
        import redis as redis_lib

        try:
            return bool(redis_lib.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping())
        except Exception:  # noqa: BLE001
            return False

    def addresses(self) -> dict[str, str]:
        return {"url": settings.REDIS_URL}

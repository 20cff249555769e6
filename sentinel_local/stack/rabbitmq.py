"""RabbitMQ from Debian's `rabbitmq-server`: the Celery broker, run as a plain foreground node."""

from __future__ import annotations

import os

from sentinel import settings
from sentinel_local.stack.runner import Service, apt_install

# The Debian wrapper in /usr/sbin switches to the rabbitmq user; the real script runs as us.
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class RabbitMQ(Service):
    name = "rabbitmq"
    start_timeout = 120.0

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.RABBITMQ_PORT

    def installed(self) -> bool:
        return os.path.exists(SERVER)

    def install(self) -> None:
        apt_install("rabbitmq-server")

    def prepare(self) -> None:
        for sub in ("mnesia", "log"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq.conf").write_text(
            "loopback_users.guest = true\n"
            # Chunks are acknowledged late (after the insert); allow slow inserts under faults.
            "consumer_timeout = 3600000\n"
            "disk_free_limit.absolute = 500MB\n"
        )
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text("SENTINELLOCALSTACKCOOKIE")
            cookie.chmod(0o400)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),
            # A node name per port, so two stacks can share the one epmd.
            "RABBITMQ_NODENAME": f"sentinel{settings.RABBITMQ_PORT}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": settings.HOST,
            "RABBITMQ_NODE_PORT": str(settings.RABBITMQ_PORT),
            "RABBITMQ_DIST_PORT": str(settings.RABBITMQ_DIST_PORT),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.home / "node.pid"),
            "ERL_EPMD_ADDRESS": settings.HOST,
        }

    def argv(self) -> list[str]:
        return [SERVER]

    def ready(self) -> bool:
        if not super().ready():
            return False
        from kombu import Connection

        try:
            with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception:  # noqa: BLE001
            return False
        return True

    def addresses(self) -> dict[str, str]:
        return {"amqp": f"amqp://{settings.HOST}:{settings.RABBITMQ_PORT}"}

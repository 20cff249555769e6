"""Apache Kafka 4.x, one KRaft node (broker and controller), from its jars on Maven Central."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel import settings
from sentinel_local.stack.runner import Service, ServiceError, run_checked

if TYPE_CHECKING:
    from collections.abc import Mapping

    from confluent_kafka.admin import AdminClient, NewTopic, TopicMetadata

POM = Path(__file__).with_name("kafka-pom.xml")


class Kafka(Service):
    name = "kafka"
    start_timeout = 120.0

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.KAFKA_PORT

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    def installed(self) -> bool:
        return any(self.libs.glob("kafka_2.13-*.jar"))

    def install(self) -> None:
        run_checked(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
            ],
            "kafka: resolving jars from Maven Central",
            log=self.log_path,
        )

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def prepare(self) -> None:
        data = self.home / "data"
        (self.home / "server.properties").write_text(f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{settings.HOST}:{settings.KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://{settings.HOST}:{settings.KAFKA_PORT},CONTROLLER://{settings.HOST}:{settings.KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://{settings.HOST}:{settings.KAFKA_PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions={settings.EVENTS_TOPIC_PARTITIONS}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# An empty group waits this long after each member joins before it assigns partitions, so the
# bridge's consumers, started together, are assigned in one round. At 0 the first was assigned
# every partition and the next join revoked them all ~0.5 s later: a stall, and the first
# consumer's open chunks read again by their new owners (2,000-3,000 messages per bridge start).
group.initial.rebalance.delay.ms=500
auto.create.topics.enable=false
message.max.bytes=4194304
log.retention.bytes={settings.KAFKA_RETENTION_BYTES}
log.segment.bytes={settings.KAFKA_SEGMENT_BYTES}
log.retention.check.interval.ms=60000
""")
        (self.home / "log4j2.properties").write_text("""\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.kafka_server.name = kafka.server.KafkaRaftServer
logger.kafka_server.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
""")
        if not (data / "meta.properties").exists():
            run_checked(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={new_cluster_id()}",
                    "-c",
                    str(self.home / "server.properties"),
                ),
                "kafka: formatting KRaft storage",
                log=self.log_path,
            )

    def argv(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.home / "server.properties"))

    def ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not super().ready():
            return False
        try:
            meta = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP}).list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        return bool(meta.brokers)

    def after_ready(self) -> None:
        ensure_topics()

    def addresses(self) -> dict[str, str]:
        return {"bootstrap": settings.KAFKA_BOOTSTRAP}


def ensure_topics() -> None:
    """Create `mcp.events` (several partitions) and its dead-letter topic if missing."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    existing = admin.list_topics(timeout=10).topics
    _check_partitions(existing.get(settings.EVENTS_TOPIC))
    _create_missing(
        admin,
        existing,
        [
            NewTopic(settings.EVENTS_TOPIC, settings.EVENTS_TOPIC_PARTITIONS, 1),
            NewTopic(settings.DLQ_TOPIC, 1, 1, config={"max.message.bytes": "8388608"}),
        ],
    )


def ensure_topic(name: str, partitions: int) -> None:
    """Create topic `name` with `partitions` if missing (the broker does not create topics on first use)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    _create_missing(admin, admin.list_topics(timeout=10).topics, [NewTopic(name, partitions, 1)])


def _create_missing(admin: AdminClient, existing: Mapping[str, object], wanted: list[NewTopic]) -> None:
    """Create each of `wanted` not in `existing`; one created meanwhile by someone else is fine."""
    missing = [t for t in wanted if t.topic not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceError(f"kafka: creating topic {topic} failed: {exc}") from exc


def _check_partitions(topic: TopicMetadata | None) -> None:
    """Refuse an events topic whose partition count is not the configured one: tests and the
    benchmark read partitions 0..N-1 by that setting, and Kafka can add partitions but never remove
    them (a stack made before the local default went from 4 to 2 has 4)."""
    if topic is None or len(topic.partitions) == settings.EVENTS_TOPIC_PARTITIONS:
        return
    raise ServiceError(
        f"kafka: topic {settings.EVENTS_TOPIC} has {len(topic.partitions)} partitions, but"
        f" SENTINEL_EVENTS_TOPIC_PARTITIONS is {settings.EVENTS_TOPIC_PARTITIONS}. Set"
        f" SENTINEL_EVENTS_TOPIC_PARTITIONS={len(topic.partitions)}, or start from a new stack:"
        f" `sentinel down`, remove {settings.STACK_DIR / 'kafka'}, `sentinel up`."
    )


def new_cluster_id() -> str:
    """A random KRaft cluster id as Kafka makes them (`kafka-storage random-uuid`): 16 random bytes,
    base64url without padding, never starting with '-'. One in 64 did, and the storage tool's
    argument parser took `-t -A2Dy...` for an option and refused to format (seen in CI); Kafka's own
    Uuid.randomUuid() draws again in that case, and so does this. The `--cluster-id=` form keeps
    any id a value."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate

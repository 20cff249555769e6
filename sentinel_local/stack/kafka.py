"""Apache Kafka 4.x from its jars on Maven Central: one KRaft node, or a cluster of three, each node a
broker and a controller."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel import settings
from sentinel_local.stack.runner import Service, ServiceError, port_open, run_checked, tail

if TYPE_CHECKING:
    from collections.abc import Mapping

    from confluent_kafka.admin import AdminClient, NewTopic, TopicMetadata

POM = Path(__file__).with_name("kafka-pom.xml")


class KafkaNode(Service):
    """One KRaft node (broker and controller) of the local cluster: node `node_id` of `nodes`."""

    start_timeout = 120.0

    def __init__(self, node_id: int, nodes: int) -> None:
        self.node_id = node_id
        self.nodes = nodes
        # A single node keeps the folder a one-broker stack always had.
        self.name = "kafka" if nodes == 1 else f"kafka-{node_id}"

    @property
    def port(self) -> int:  # type: ignore[override]
        return node_port(self.node_id)

    @property
    def controller_port(self) -> int:
        return settings.KAFKA_CONTROLLER_PORT + 2 * (self.node_id - 1)

    @property
    def libs(self) -> Path:
        # One copy of the jars for every node.
        return settings.STACK_DIR / "kafka" / "libs"

    @property
    def cluster_id_path(self) -> Path:
        # Every node of a cluster is formatted with the same id; a formatted node refuses any other.
        return settings.STACK_DIR / "kafka" / f"cluster-id-{self.nodes}"

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

    def cluster_id(self) -> str:
        if not self.cluster_id_path.exists():
            self.cluster_id_path.parent.mkdir(parents=True, exist_ok=True)
            self.cluster_id_path.write_text(new_cluster_id())
        return self.cluster_id_path.read_text().strip()

    def prepare(self) -> None:
        data = self.home / "data"
        (self.home / "server.properties").write_text(server_properties(self.node_id, self.nodes, data))
        (self.home / "log4j2.properties").write_text(LOG4J2)
        if not (data / "meta.properties").exists():
            run_checked(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={self.cluster_id()}",
                    "-c",
                    str(self.home / "server.properties"),
                ),
                "kafka: formatting KRaft storage",
                log=self.log_path,
            )

    def argv(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.home / "server.properties"))

    def ready(self) -> bool:
        """This node answers as a broker and the cluster lists it: it is registered and unfenced."""
        from confluent_kafka.admin import AdminClient

        if not super().ready():
            return False
        try:
            meta = AdminClient({"bootstrap.servers": f"{settings.HOST}:{self.port}"}).list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        return self.node_id in meta.brokers

    def quorum_leader(self) -> int | None:
        """The active controller as this node last recorded it (its quorum-state file), or None."""
        import json

        try:
            state = json.loads((self.home / "data" / "__cluster_metadata-0" / "quorum-state").read_text())
        except (OSError, ValueError):
            return None
        leader = state.get("leaderId", -1)
        return int(leader) if isinstance(leader, int) and leader >= 0 else None

    def addresses(self) -> dict[str, str]:
        return {"bootstrap": f"{settings.HOST}:{self.port}"}


class Kafka(Service):
    """The local Kafka: settings.KAFKA_BROKERS nodes (1 or 3), started and stopped together.

    A multi-node quorum elects a controller only once a majority runs, so the nodes are all started
    before any is waited for. `nodes` gives the fault suite each node on its own."""

    name = "kafka"
    start_timeout = 180.0

    def __init__(self, nodes: int = settings.KAFKA_BROKERS) -> None:
        self.nodes = tuple(KafkaNode(n, nodes) for n in range(1, nodes + 1))

    @property
    def port(self) -> int:  # type: ignore[override]
        return settings.KAFKA_PORT

    def installed(self) -> bool:
        return self.nodes[0].installed()

    def install(self) -> None:
        self.nodes[0].install()

    def argv(self) -> list[str]:
        return self.nodes[0].argv()

    def pid(self) -> int | None:
        """The first node's pid, if every node is ours and running."""
        pids = [node.pid() for node in self.nodes]
        return pids[0] if all(pids) else None

    def ready(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not all(port_open(node.port) for node in self.nodes):
            return False
        try:
            meta = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP}).list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        return set(meta.brokers) == {node.node_id for node in self.nodes}

    def up(self) -> str:
        if self.ready():
            self.after_ready()
            return "reused"
        self._refuse_another_cluster()
        if not self.installed():
            self.install()
        outcomes = [node.start() for node in self.nodes]
        deadline = time.monotonic() + self.start_timeout
        while not self.ready():
            for node in self.nodes:
                node.check_alive()
            if time.monotonic() > deadline:
                self.down(timeout=10)
                logs = "\n".join(f"{node.log_path}:\n{tail(node.log_path, 10)}" for node in self.nodes)
                raise ServiceError(f"kafka: {len(self.nodes)} node(s) not ready in {self.start_timeout:.0f}s\n{logs}")
            time.sleep(0.25)
        self.after_ready()
        return "started" if "started" in outcomes else "reused"

    def _refuse_another_cluster(self) -> None:
        """A broker on our first port that is not this cluster (another size, someone else's) would
        be taken for ours by every client; say so instead of starting beside it."""
        from confluent_kafka.admin import AdminClient

        if self.nodes[0].pid() is not None or not port_open(self.port):
            return
        try:
            meta = AdminClient({"bootstrap.servers": f"{settings.HOST}:{self.port}"}).list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - not answering: let the start report it
            return
        raise ServiceError(
            f"kafka: a cluster of {len(meta.brokers)} broker(s) answers on port {self.port}, but"
            f" SENTINEL_KAFKA_BROKERS is {len(self.nodes)}. Stop it (`sentinel down` with the environment"
            f" that started it), or set SENTINEL_KAFKA_BROKERS={len(meta.brokers)}."
        )

    def down(self, timeout: float = 30.0) -> bool:
        # Also the nodes of the other size this stack may run (`make test` starts three, a later
        # `sentinel down` in a shell without SENTINEL_KAFKA_BROKERS=3 must still stop them).
        nodes = [*self.nodes, *(n for n in _every_node() if n.name not in {m.name for m in self.nodes})]
        # Every node told at once: one by one, each waited out a controlled shutdown that the
        # nodes still running kept alive, and the last could not hand its leadership to anyone.
        for node in nodes:
            pid = node.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
        stopped = [node.down(timeout) for node in nodes]
        return any(stopped)

    def after_ready(self) -> None:
        ensure_topics()

    def status(self) -> str:
        states = [node.status() for node in self.nodes]
        if len(set(states)) == 1:
            return states[0]
        return ", ".join(f"{n.name} {s}" for n, s in zip(self.nodes, states, strict=True))

    def addresses(self) -> dict[str, str]:
        return {"bootstrap": settings.KAFKA_BOOTSTRAP}

    def active_controller(self) -> KafkaNode | None:
        """The node that leads the KRaft quorum, as the running nodes recorded it."""
        leaders = {node.quorum_leader() for node in self.nodes if node.pid() is not None} - {None}
        if len(leaders) != 1:
            return None
        (leader,) = leaders
        return next(node for node in self.nodes if node.node_id == leader)


def _every_node() -> list[KafkaNode]:
    """The nodes of both sizes the local stack runs: one, or three."""
    return [KafkaNode(1, 1), *(KafkaNode(n, 3) for n in range(1, 4))]


def node_port(node_id: int) -> int:
    return settings.KAFKA_PORT + 2 * (node_id - 1)


def server_properties(node_id: int, nodes: int, data: Path) -> str:
    """One node's configuration. With three nodes every internal topic has three replicas and takes a
    write once two have it, as `mcp.events` does (ensure_topics)."""
    host = settings.HOST
    voters = ",".join(f"{n}@{host}:{settings.KAFKA_CONTROLLER_PORT + 2 * (n - 1)}" for n in range(1, nodes + 1))
    port = node_port(node_id)
    controller = settings.KAFKA_CONTROLLER_PORT + 2 * (node_id - 1)
    replicas = min(nodes, 3)
    min_isr = settings.KAFKA_MIN_INSYNC_REPLICAS
    return f"""\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions={settings.EVENTS_TOPIC_PARTITIONS}
default.replication.factor={replicas}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={replicas}
offsets.topic.num.partitions=8
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={min_isr}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={min_isr}
# A lost broker is fenced, and dropped from every ISR, once it missed heartbeats this long (Kafka's
# 9 s default). Until then acks=all writes to its partitions wait, and ingest answers 503 after
# SENTINEL_INGEST_PUBLISH_TIMEOUT_S (10 s): with a controller election first, 9 s came too close.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
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
"""


LOG4J2 = """\
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
"""


def ensure_topics() -> None:
    """Create `mcp.events` (several partitions) and its dead-letter topic if missing."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    existing = admin.list_topics(timeout=10).topics
    _check_partitions(existing.get(settings.EVENTS_TOPIC))
    replicas = settings.EVENTS_TOPIC_REPLICATION_FACTOR
    durable = {"min.insync.replicas": str(settings.KAFKA_MIN_INSYNC_REPLICAS)}
    _create_missing(
        admin,
        existing,
        [
            NewTopic(settings.EVENTS_TOPIC, settings.EVENTS_TOPIC_PARTITIONS, replicas, config=durable),
            NewTopic(settings.DLQ_TOPIC, 1, replicas, config={**durable, "max.message.bytes": "8388608"}),
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

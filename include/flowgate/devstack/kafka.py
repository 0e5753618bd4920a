"""A Kafka 4.x broker in KRaft mode (broker and controller in one JVM), from Maven jars.

The jars come from ``jars/kafka-broker.pom.xml`` (``make setup``); the storage is
formatted once with a cluster id kept in the data dir, as Kafka 4's StorageTool wants.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.process import Service, ServiceError, tcp_open
from flowgate.logs import MAX_MESSAGE_BYTES
from flowgate.logs.ttl import load_ttl


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_hours: int
    purpose: str
    # Further topic configs, by Kafka's names (retention.bytes, max.message.bytes, ...).
    config: Mapping[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_hours * 3600 * 1000), **self.config}


DAY = 24
_LOGS_TTL = load_ttl().kafka  # app.logs' retention lives with every other log TTL (logs/ttl.yaml)
# The platform's topics. Two partitions where a Spark job reads: one per core here.
TOPICS = (
    Topic("platform.smoke", 1, DAY, "platform_smoke DAG round trips"),
    Topic("payments.events", 2, 7 * DAY, "payment gateway events (PAN encrypted for the tokenizer)"),
    Topic("payments.decisions", 2, 30 * DAY, "fraud decisions"),
    Topic("payments.deadletter", 1, 30 * DAY, "malformed payment events, with the reason"),
    Topic("mobile.events", 2, 7 * DAY, "Customer 360 mobile app events"),
    # Two partitions: the logs job reads one per core here (more would not read faster on
    # two cores). Retention in time and bytes, for spikes: see logs/ttl.yaml.
    Topic("app.logs", 2, _LOGS_TTL.retention_hours, "application logs on their way to the S3 lake",
          config={"retention.bytes": str(_LOGS_TTL.retention_bytes), "max.message.bytes": str(MAX_MESSAGE_BYTES)}),
    Topic("app.logs.deadletter", 1, 7 * DAY, "log lines that could not be parsed"),
)


def topic_like(template: str, name: str) -> Topic:
    """A topic of a test's or a bench's own, declared as the platform's ``template`` is
    (partitions, retention, message size): what runs on it behaves as on the real one."""
    from dataclasses import replace

    (declared,) = [t for t in TOPICS if t.name == template]
    return replace(declared, name=name)


def bootstrap_servers(cfg: StackConfig) -> str:
    return f"{LOOPBACK}:{cfg.ports.kafka}"


def _java() -> str:
    return shutil.which("java") or "java"


def _classpath(cfg: StackConfig) -> str:
    return f"{cfg.jars_dir / 'kafka-broker'}/*"


def _check_prerequisites(cfg: StackConfig) -> None:
    if not shutil.which("java"):
        raise ServiceError("kafka needs Java 17+ on PATH (install a JRE, e.g. openjdk-17-jre-headless)")
    if not any((cfg.jars_dir / "kafka-broker").glob("kafka_2.13-*.jar")):
        raise ServiceError(f"kafka jars missing in {cfg.jars_dir / 'kafka-broker'}: run `make setup` (Maven resolves them)")


def write_server_properties(cfg: StackConfig) -> Path:
    data = cfg.data_dir("kafka")
    data.mkdir(parents=True, exist_ok=True)
    ports = cfg.ports
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{ports.kafka_controller}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{ports.kafka},CONTROLLER://{LOOPBACK}:{ports.kafka_controller}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{ports.kafka}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data / "logs"),
        "num.partitions": "2",
        # One broker: internal topics cannot be replicated.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Topics are created by the stack with their partitions and retention.
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
    }
    path = data / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def format_storage(cfg: StackConfig) -> None:
    """Format the KRaft storage once; the cluster id is kept beside the data."""
    _check_prerequisites(cfg)
    data = cfg.data_dir("kafka")
    props = write_server_properties(cfg)
    if (data / "logs" / "meta.properties").exists():
        return
    java, cp = _java(), _classpath(cfg)
    cluster_id_file = data / "cluster.id"
    if not cluster_id_file.exists():
        out = subprocess.run([java, "-cp", cp, "kafka.tools.StorageTool", "random-uuid"],
                             check=True, capture_output=True, text=True)
        cluster_id_file.write_text(out.stdout.strip().splitlines()[-1])
    subprocess.run(
        [java, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id_file.read_text().strip(),
         "-c", str(props), "--standalone"],
        check=True, capture_output=True, text=True,
    )


def kafka_service(cfg: StackConfig) -> Service:
    data = cfg.data_dir("kafka")
    log4j = data / "log4j2.properties"
    return Service(
        name="kafka",
        argv=[
            _java(), "-Xms256m", "-Xmx768m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={cfg.log_dir}",
            "-cp", _classpath(cfg), "kafka.Kafka", str(data / "server.properties"),
        ],
        health=lambda: tcp_open(cfg.ports.kafka) and _metadata_ok(cfg),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        prepare=lambda: (format_storage(cfg), _write_log4j(log4j)),
        start_timeout=90,
    )


def _write_log4j(path: Path) -> None:
    # Broker logs go to stdout, which the stack sends to .flowgate/logs/kafka.log.
    path.write_text(
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.stdout.ref = STDOUT\n"
        "appender.stdout.type = Console\n"
        "appender.stdout.name = STDOUT\n"
        "appender.stdout.layout.type = PatternLayout\n"
        "appender.stdout.layout.pattern = [%d] %p %m (%c)%n\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = WARN\n"
        "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
    )


def _admin(cfg: StackConfig):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap_servers(cfg), "socket.timeout.ms": 3000})


def _metadata_ok(cfg: StackConfig) -> bool:
    try:
        _admin(cfg).list_topics(timeout=3)
        return True
    except Exception:  # the broker is still starting: any client error means "not yet"
        return False


def ensure_topics(cfg: StackConfig, topics=TOPICS) -> list[str]:
    """Create the platform's topics that are missing, and bring the configs of those that
    exist to what ``topics`` declares (a stack made before a retention or message-size
    change gets it too; their data stays). Returns the names created."""
    from confluent_kafka.admin import NewTopic

    admin = _admin(cfg)
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(t.name, num_partitions=t.partitions, replication_factor=1,
                 config=t.topic_config())
        for t in topics if t.name not in existing
    ]
    _reconcile_configs(admin, [t for t in topics if t.name in existing])
    if not wanted:
        return []
    for name, future in admin.create_topics(wanted, operation_timeout=30).items():
        future.result()
    return [t.topic for t in wanted]


def _reconcile_configs(admin, topics) -> list[str]:
    """Set the declared configs that differ on existing topics; the names changed."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    if not topics:
        return []
    resources = [ConfigResource(ResourceType.TOPIC, t.name) for t in topics]
    current = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
    changes = []
    for topic in topics:
        differ = {k: v for k, v in topic.topic_config().items()
                  if k not in current[topic.name] or current[topic.name][k].value != v}
        if differ:
            changes.append(ConfigResource(ResourceType.TOPIC, topic.name, incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in differ.items()]))
    if changes:
        for future in admin.incremental_alter_configs(changes).values():
            future.result()
    return [c.name for c in changes]

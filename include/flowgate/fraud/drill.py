"""A drill: the fraud stream on topics of its own, fed by the gateway simulator and
watched until every transaction is decided.

The demo, the latency bench and the integration tests all run drills, so what they
show is the same thing: the real job (spark-submit, detached, as the supervisor runs
it) against the real broker, tokenizer and store. A drill's own topics and checkpoint
keep it from touching the platform's running stream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from flowgate.common import stream_supervisor as supervisor
from flowgate.fraud.store import ensure_schema
from flowgate.fraud.stream import fraud_stream_spec

PARTITIONS = 2


@dataclass(frozen=True)
class DrillTopics:
    events: str
    decisions: str
    dead_letters: str

    @classmethod
    def fresh(cls, label: str) -> DrillTopics:
        tag = f"{label}-{uuid.uuid4().hex[:8]}"
        return cls(f"drill.{tag}.events", f"drill.{tag}.decisions", f"drill.{tag}.deadletter")

    def all(self) -> tuple[str, str, str]:
        return self.events, self.decisions, self.dead_letters


def create_topics(bootstrap: str, topics: DrillTopics) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics.all()])
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(bootstrap: str, topics: DrillTopics) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(topics.all())).values():
        try:
            future.result(timeout=30)
        except KafkaException:
            pass


def drill_spec(topics: DrillTopics, state_dir: Path, models_dir: Path, *extra_args: str) -> supervisor.StreamSpec:
    return fraud_stream_spec(state_dir=state_dir, extra_args=(
        "--events-topic", topics.events, "--decisions-topic", topics.decisions,
        "--dead-letter-topic", topics.dead_letters, "--models-dir", str(models_dir), *extra_args,
    ))


def decided_count(store_dsn: str, transaction_ids: list[str]) -> int:
    with psycopg.connect(store_dsn) as conn:
        return conn.execute(
            "select count(*) from fraud.decisions where transaction_id = any(%s::uuid[])", (transaction_ids,)
        ).fetchone()[0]


def wait_until_decided(store_dsn: str, transaction_ids: list[str], timeout_s: float,
                       while_waiting: Callable[[int], None] | None = None) -> int:
    """Poll the store until every id is decided (or the timeout); the decided count."""
    with psycopg.connect(store_dsn) as conn:
        ensure_schema(conn)  # the job creates it too; the drill may look before it starts
    deadline = time.monotonic() + timeout_s
    decided = 0
    while time.monotonic() < deadline:
        decided = decided_count(store_dsn, transaction_ids)
        if decided >= len(transaction_ids):
            break
        if while_waiting:
            while_waiting(decided)
        time.sleep(1)
    return decided


def read_all(bootstrap: str, topic: str, timeout_s: float = 30) -> list[tuple[bytes | None, bytes | None, int]]:
    """Every message on ``topic`` now: (key, value, Kafka timestamp in ms)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"drill-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for partition in metadata.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        messages, done = [], {p for p, high in ends.items() if high == 0}
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append((message.key(), message.value(), message.timestamp()[1]))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return messages
    finally:
        consumer.close()


def decisions_on_topic(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(value) for _, value, _ in read_all(bootstrap, topic)]


def duplicate_count(ids: Iterable[str]) -> int:
    seen, duplicates = set(), 0
    for tx_id in ids:
        duplicates += tx_id in seen
        seen.add(tx_id)
    return duplicates

"""The platform health check: one round trip per component, through Airflow's hooks.

Each function writes something unique to the run, reads it back and returns what it
saw; a mismatch raises, so a broken component fails its own task with a clear reason.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


class SmokeCheckError(AssertionError):
    """A component answered, but not with what was written to it."""


def _expect(component: str, wrote: object, read: object) -> None:
    if wrote != read:
        raise SmokeCheckError(f"{component}: wrote {wrote!r} but read back {read!r}")


def postgres_roundtrip(conn_id: str, marker: str) -> dict:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=conn_id)
    hook.run(
        [
            "create schema if not exists platform",
            "create table if not exists platform.smoke_checks (marker text primary key, checked_at timestamptz not null default now())",
            "insert into platform.smoke_checks (marker) values (%(marker)s) on conflict (marker) do update set checked_at = now()",
        ],
        parameters={"marker": marker},
        autocommit=True,
    )
    row = hook.get_first("select marker from platform.smoke_checks where marker = %(marker)s", parameters={"marker": marker})
    _expect("postgres", marker, row[0] if row else None)
    return {"conn_id": conn_id, "marker": marker}


def kafka_produce(conn_id: str, topic: str, marker: str) -> dict:
    from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

    producer = KafkaProducerHook(kafka_config_id=conn_id).get_producer()
    delivered: list = []
    producer.produce(topic, key=marker.encode(), value=json.dumps({"marker": marker}).encode(),
                     on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(30)
    if not delivered or delivered[0][0] is not None:
        raise SmokeCheckError(f"kafka: message to {topic} not acknowledged: {delivered}")
    msg = delivered[0][1]
    return {"topic": topic, "key": marker, "partition": msg.partition(), "offset": msg.offset()}


def kafka_consume(conn_id: str, topic: str, marker: str, partition: int, offset: int) -> dict:
    """Read the produced message back from its exact partition and offset."""
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
    from confluent_kafka import TopicPartition

    consumer = KafkaConsumerHook(topics=[topic], kafka_config_id=conn_id).get_consumer()
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        msg = consumer.poll(30)
        if msg is None or msg.error():
            raise SmokeCheckError(f"kafka: nothing read at {topic}[{partition}]@{offset}: {msg and msg.error()}")
        _expect("kafka", marker, json.loads(msg.value())["marker"])
    finally:
        consumer.close()
    return {"topic": topic, "partition": partition, "offset": offset}


def s3_roundtrip(conn_id: str, bucket: str, marker: str) -> dict:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=conn_id)
    key = f"platform/smoke/{marker}.json"
    hook.load_string(json.dumps({"marker": marker}), key=key, bucket_name=bucket, replace=True)
    _expect("s3", marker, json.loads(hook.read_key(key, bucket_name=bucket))["marker"])
    return {"bucket": bucket, "key": key}


def sftp_roundtrip(conn_id: str, marker: str, remote_dir: str = "smoke") -> dict:
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    hook = SFTPHook(ssh_conn_id=conn_id)
    with tempfile.TemporaryDirectory() as tmp:
        local, back = Path(tmp) / "up.txt", Path(tmp) / "down.txt"
        local.write_text(marker)
        if not hook.path_exists(remote_dir):
            hook.create_directory(remote_dir)
        remote = f"{remote_dir}/{marker}.txt"
        hook.store_file(remote, str(local))
        listed = hook.list_directory(remote_dir)
        if f"{marker}.txt" not in listed:
            raise SmokeCheckError(f"sftp: {remote} missing from listing {listed}")
        hook.retrieve_file(remote, str(back))
        _expect("sftp", marker, back.read_text())
        hook.delete_file(remote)
    return {"remote": remote}


def marker_for(run_id: str) -> str:
    """A value unique to the run, safe as a file name and a Kafka key."""
    return "".join(c if c.isalnum() else "-" for c in run_id)


__all__ = [
    "SmokeCheckError", "kafka_consume", "kafka_produce", "marker_for", "postgres_roundtrip",
    "s3_roundtrip", "sftp_roundtrip",
]

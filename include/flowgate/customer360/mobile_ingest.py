"""Kafka ``mobile.events`` -> ``raw_mobile.events``: the hourly run's ingest, on Spark.

**Why ``trigger(availableNow=True)`` and not a supervised continuous stream.** Flow 3 is
a Lambda design whose serving layer is hourly: dbt rebuilds ``customer_360`` once an
hour, so events that landed a minute after they happened wait for that run all the same.
A run of the hourly DAG therefore starts the query, which reads everything Kafka holds
beyond the checkpoint's offsets (bounded batches of ``maxOffsetsPerTrigger``), writes it,
and stops; the next run resumes from the same checkpoint. That gives the speed layer's
guarantees (offsets in a checkpoint, replay after a crash, idempotent sink) with the
batch layer's operations: nothing to keep alive, supervise or restart between runs, no
executor cores held for an hour to do a minute's work on a shared 2-core host, a clear
"done" that the dbt tasks can follow, and a backfill that is just another run. Kafka
(7 days' retention) is the buffer between runs. A continuous stream would only pay off
when something reads ``raw_mobile`` more often than hourly; the same job file then runs
with a processing-time trigger under ``common.stream_supervisor``.

On the driver, per micro-batch (:class:`MobileEventsLoader`): each message is read
against the expected schema (``mobile_schema``), and the batch is written in one
transaction (``mobile_store``). After the query has stopped, :func:`ingest_mobile_events`
tells the owning team about new drift (``drift_alerts``). The checkpoint (offsets and
commits, no rows) lives in the stream's state folder beside the other streams'.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from flowgate.customer360.identity import IDENTITY_KEY_ENV, identity_key
from flowgate.customer360.mobile_schema import (
    Examined, ExpectedSchema, KafkaCoordinates, Rejected, load_schema, read_event)
from flowgate.customer360.mobile_store import RAW_SCHEMA, BatchResult, ensure_tables, load_batch

STREAM_NAME = "mobile_events"
WAREHOUSE_CONN_ID = "warehouse"
KAFKA_CONN_ID = "kafka_default"
ALERTMANAGER_CONN_ID = "alertmanager"
SPARK_CONN_ID = "spark_default"
WAREHOUSE_DSN_ENV = "FLOWGATE_WAREHOUSE_DSN"  # what spark_jobs/mobile_events.py reads: never argv
# Bounded micro-batches: a backlog (a day of events after an outage) is read in pieces
# that fit the driver, each in its own warehouse transaction.
MAX_OFFSETS_PER_TRIGGER = 50_000


@dataclass
class IngestTotals:
    batches: int = 0
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    new_conflicts: int = 0
    batch_ids: list[int] = field(default_factory=list)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.batch_ids.append(result.batch_id)
        for name in ("received", "inserted", "duplicates", "rejected", "new_conflicts"):
            setattr(self, name, getattr(self, name) + getattr(result, name))

    def as_dict(self) -> dict:
        return dict(vars(self))


class MobileEventsLoader:
    """What the Spark job's foreachBatch calls: examine the batch's messages, write them."""

    def __init__(self, dsn: str, identity_key: str, raw_schema: str = RAW_SCHEMA,
                 schema: ExpectedSchema | None = None) -> None:
        self.schema = schema or load_schema()
        self.identity_key = identity_key
        self.raw_schema = raw_schema
        self.conn = psycopg.connect(dsn, autocommit=True)
        ensure_tables(self.conn, raw_schema)
        self.totals = IngestTotals()

    def load(self, batch_id: int, messages: list[dict]) -> BatchResult:
        """``messages``: Kafka rows as dicts (topic, partition, offset, timestamp, value as text)."""
        events, rejected = examine_messages(messages, self.schema, self.identity_key)
        result = load_batch(self.conn, batch_id, events, rejected, self.schema, self.raw_schema)
        self.totals.add(result)
        return result

    def close(self) -> None:
        self.conn.close()


def examine_messages(messages: list[dict], schema: ExpectedSchema,
                     identity_key: str) -> tuple[list[Examined], list[Rejected]]:
    events: list[Examined] = []
    rejected: list[Rejected] = []
    for m in messages:
        at = KafkaCoordinates(m["topic"], m["partition"], m["offset"], m.get("timestamp"))
        read = read_event(m.get("value"), at, schema, identity_key)
        (events if isinstance(read, Examined) else rejected).append(read)
    return events, rejected


# ----------------------------------------------------------------------------- the run


def state_dir_default() -> Path:
    from flowgate.common.stream_supervisor import streams_root

    return streams_root() / STREAM_NAME


def mobile_events_spec(*, topic: str, raw_schema: str, state_dir: Path,
                       max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER):
    """spark-submit's view of one run: the job, its arguments, where its checkpoint lives.
    Everything from connections; the warehouse's DSN and the identity key go in the
    driver's environment."""
    from flowgate.common import connections
    from flowgate.common.spark import kafka_connector_jars, spark_job
    from flowgate.common.stream_supervisor import StreamSpec, stream_conf

    return StreamSpec(
        name=STREAM_NAME,
        job_file=spark_job("mobile_events.py"),
        job_args=("--bootstrap", connections.kafka_bootstrap(KAFKA_CONN_ID), "--topic", topic,
                  "--checkpoint", str(state_dir / "checkpoint"), "--raw-schema", raw_schema,
                  "--summary", str(state_dir / "last_run.json"),
                  "--max-offsets-per-trigger", str(max_offsets_per_trigger)),
        state_dir=state_dir,
        master=connections.spark_master(SPARK_CONN_ID),
        jars=kafka_connector_jars(),
        # Small: one core's worth of work an hour; the host is shared.
        conf={**stream_conf(state_dir), "spark.driver.memory": "1g"},
        env={WAREHOUSE_DSN_ENV: connections.postgres_dsn(WAREHOUSE_CONN_ID), IDENTITY_KEY_ENV: identity_key()},
    )


class IngestFailed(RuntimeError):
    pass


class RunInProgress(IngestFailed):
    """Another run holds the checkpoint: two drivers on one checkpoint would corrupt it."""


@contextmanager
def exclusive_run(state_dir: Path) -> Iterator[None]:
    """Hold the state folder's lock for one run, or fail at once (a manual run beside the
    scheduled one; the DAG's max_active_runs=1 covers only its own runs)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "run.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise RunInProgress(f"another {STREAM_NAME} run holds {state_dir}: wait for it to finish") from err
        yield


def run_available_now(spec, timeout_s: float = 1800) -> IngestTotals:
    """Run the job to completion (it stops once it has read what Kafka held) and return its
    totals. It blocks the task for the run's minutes: unlike a stream's submit, there is an end."""
    from flowgate.common.spark import submit_environment
    from flowgate.common.stream_supervisor import spark_submit_argv

    summary = spec.state_dir / "last_run.json"
    log = spec.state_dir / "last_run.log"
    with exclusive_run(spec.state_dir):
        summary.unlink(missing_ok=True)
        with log.open("wb") as out:
            done = subprocess.run(spark_submit_argv(spec), stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s,
                                  env={**os.environ, **submit_environment(), **spec.env})
    if done.returncode != 0 or not summary.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise IngestFailed(f"{spec.name}: spark-submit exited {done.returncode}; log {log}:\n{tail}")
    return IngestTotals(**json.loads(summary.read_text()))


def ingest_mobile_events(*, topic: str | None = None, raw_schema: str = RAW_SCHEMA, state_dir: Path | None = None,
                         alert_env: str = "local", max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER,
                         timeout_s: float = 1800) -> dict:
    """The hourly DAG's task: ingest what arrived since the last run, then notify new drift.

    Returns counts only (fit for XCom: no payloads, no emails). Drift that Alertmanager
    did not take is raised after the load has committed, so the task's retry posts it
    (the retried ingest itself finds nothing new)."""
    from flowgate.common import connections
    from flowgate.common.alertmanager import AlertmanagerClient
    from flowgate.customer360.drift_alerts import notify_schema_drift

    schema = load_schema()
    topic = topic or schema.topic
    dsn = connections.postgres_dsn(WAREHOUSE_CONN_ID)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_tables(conn, raw_schema)  # before Spark starts, so a failure names the warehouse
    spec = mobile_events_spec(topic=topic, raw_schema=raw_schema, state_dir=state_dir or state_dir_default(),
                              max_offsets_per_trigger=max_offsets_per_trigger)
    totals = run_available_now(spec, timeout_s)
    with psycopg.connect(dsn, autocommit=True) as conn, AlertmanagerClient.from_connection(ALERTMANAGER_CONN_ID) as am:
        notified = notify_schema_drift(conn, am, owner=schema.owner, env=alert_env, topic=topic, raw_schema=raw_schema)
    return {**totals.as_dict(), "drift_notified": [f"{n.change}:{n.field_path}" for n in notified]}

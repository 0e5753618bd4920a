"""Fraud detection stream: payments.events → decisions, exactly once per transaction id.

Spark reads the events from Kafka in bounded micro-batches (``maxOffsetsPerTrigger``: a
spike waits in Kafka instead of blowing up a batch) and checkpoints the offsets; each
micro-batch goes to ``flowgate.fraud.pipeline.DecisionEngine`` on the driver, which
tokenizes, scores and records the decisions idempotently. After a crash Spark replays
the uncommitted batch and the idempotent store makes the replay a no-op.

The same file runs on ``local[*]`` and on a cluster master (spark-submit --master ...).

    spark-submit --jars <kafka connector jars> spark_jobs/fraud_detection.py \
        --bootstrap 127.0.0.1:9092 --checkpoint DIR --heartbeat FILE \
        --tokenizer-url http://127.0.0.1:8097 [--models-dir DIR] [--max-offsets-per-trigger N]

The fraud store's DSN comes from the environment (FLOWGATE_FRAUD_STORE_DSN), never argv:
a command line is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter

from flowgate.common.spark_listener import HeartbeatListener
from flowgate.fraud.events import SourceRecord
from flowgate.fraud.kafka_out import KafkaPublisher
from flowgate.fraud.model import load_current_model
from flowgate.fraud.pipeline import DecisionEngine
from flowgate.fraud.policy import DegradedModePolicy
from flowgate.fraud.store import DecisionStore
from flowgate.fraud.tokenizer_client import TokenizerClient

STREAM_NAME = "fraud_detection"
STORE_DSN_ENV = "FLOWGATE_FRAUD_STORE_DSN"


@dataclass(frozen=True)
class JobConfig:
    bootstrap: str
    checkpoint: str
    heartbeat: Path
    tokenizer_url: str
    models_dir: Path | None
    events_topic: str = "payments.events"
    decisions_topic: str = "payments.decisions"
    dead_letter_topic: str = "payments.deadletter"
    max_offsets_per_trigger: int = 2000
    starting_offsets: str = "earliest"
    tokenizer_timeout_s: float = 0.5
    fail_open_max_amount: Decimal = Decimal("100.00")
    fail_closed_decision: str = "review"


def parse_args(argv: list[str]) -> JobConfig:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--heartbeat", required=True, type=Path)
    p.add_argument("--tokenizer-url", required=True)
    p.add_argument("--models-dir", type=Path)
    p.add_argument("--events-topic", default=JobConfig.events_topic)
    p.add_argument("--decisions-topic", default=JobConfig.decisions_topic)
    p.add_argument("--dead-letter-topic", default=JobConfig.dead_letter_topic)
    p.add_argument("--max-offsets-per-trigger", type=int, default=JobConfig.max_offsets_per_trigger)
    p.add_argument("--starting-offsets", default=JobConfig.starting_offsets)
    p.add_argument("--tokenizer-timeout-s", type=float, default=JobConfig.tokenizer_timeout_s)
    p.add_argument("--fail-open-max-amount", type=Decimal, default=JobConfig.fail_open_max_amount)
    p.add_argument("--fail-closed-decision", choices=("review", "decline"), default=JobConfig.fail_closed_decision)
    return JobConfig(**{k.replace("-", "_"): v for k, v in vars(p.parse_args(argv)).items()})


def kafka_events(spark: SparkSession, cfg: JobConfig) -> DataFrame:
    """The raw events, bounded per trigger; only what the engine needs of each record."""
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.bootstrap)
        .option("subscribe", cfg.events_topic)
        .option("startingOffsets", cfg.starting_offsets)
        .option("maxOffsetsPerTrigger", cfg.max_offsets_per_trigger)
        .load()
        .select("value", "partition", "offset", "timestamp")
    )


def source_records(batch: pa.Table) -> list[SourceRecord]:
    """Arrow straight to Python objects: no pandas frame on the hot path (a timestamp
    column comes out as tz-aware datetimes, as the session's zone is UTC)."""
    columns = batch.to_pydict()  # kafka_events() selected exactly these columns
    return [
        SourceRecord(value=value, partition=partition, offset=offset, timestamp=stamp)
        for value, partition, offset, stamp in zip(
            columns["value"], columns["partition"], columns["offset"], columns["timestamp"], strict=True)
    ]


def build_pipeline(events: DataFrame, engine: DecisionEngine, checkpoint: str) -> DataStreamWriter:
    def process_batch(batch: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        records = source_records(batch.toArrow())
        outcome = engine.process(batch_id, records, collect_ms=(time.perf_counter() - started) * 1000)
        if not outcome.reconciles():
            raise RuntimeError(f"batch {batch_id} does not reconcile: {outcome}")

    return (
        events.writeStream.queryName(STREAM_NAME)
        .foreachBatch(process_batch)
        .option("checkpointLocation", checkpoint)
        # No asyncProgressTrackingEnabled: Spark 4.2 refuses it for foreachBatch sinks
        # ("Sink ForeachBatchSink does not support async progress tracking").
        .trigger(processingTime="0 seconds")  # next batch as soon as the last one ends
    )


def build_engine(cfg: JobConfig) -> DecisionEngine:
    return DecisionEngine(
        tokenizer=TokenizerClient(cfg.tokenizer_url, timeout_s=cfg.tokenizer_timeout_s),
        model=load_current_model(cfg.models_dir) if cfg.models_dir else load_current_model(),
        store=DecisionStore(os.environ[STORE_DSN_ENV]),
        publisher=KafkaPublisher(cfg.bootstrap, cfg.decisions_topic, cfg.dead_letter_topic),
        policy=DegradedModePolicy(cfg.fail_open_max_amount, cfg.fail_closed_decision),
    )


def spark_session() -> SparkSession:
    return (
        SparkSession.builder.appName("flowgate-fraud-detection")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    engine = build_engine(cfg)
    spark = spark_session()
    spark.sparkContext.setLogLevel("WARN")
    spark.streams.addListener(HeartbeatListener(STREAM_NAME, cfg.heartbeat, lambda: vars(engine.totals)))
    # Everything built so far (imports, Spark session, model) lives as long as the driver:
    # out of the collector's sight, a full collection no longer walks it mid-batch.
    gc.freeze()
    query = build_pipeline(kafka_events(spark, cfg), engine, cfg.checkpoint).start()
    print(f"{STREAM_NAME}: query {query.id} started, model {engine.model.version}", flush=True)
    query.awaitTermination()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

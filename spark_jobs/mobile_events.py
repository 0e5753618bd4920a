"""Mobile app events: Kafka mobile.events -> raw_mobile.events, one availableNow run.

Spark reads what the topic holds beyond the checkpoint's offsets, in bounded micro-batches,
and stops (``trigger(availableNow=True)``: the hourly DAG starts it, see
``flowgate.customer360.mobile_ingest`` for why not a continuous stream). Each micro-batch
goes to ``MobileEventsLoader`` on the driver: read against the expected schema, written to
the warehouse in one transaction, idempotent on event_id, so the batch Spark replays
after a crash adds nothing.

    spark-submit --jars <kafka connector jars> spark_jobs/mobile_events.py \
        --bootstrap 127.0.0.1:9092 --checkpoint DIR --summary FILE [--topic T] [--raw-schema S]

The warehouse's DSN comes from the environment (FLOWGATE_WAREHOUSE_DSN), never argv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter

from flowgate.customer360.identity import identity_key_from_env
from flowgate.customer360.mobile_ingest import MAX_OFFSETS_PER_TRIGGER, WAREHOUSE_DSN_ENV, MobileEventsLoader
from flowgate.customer360.mobile_store import RAW_SCHEMA

STREAM_NAME = "mobile_events"


@dataclass(frozen=True)
class JobConfig:
    bootstrap: str
    checkpoint: str
    summary: Path
    topic: str = "mobile.events"
    raw_schema: str = RAW_SCHEMA
    max_offsets_per_trigger: int = MAX_OFFSETS_PER_TRIGGER


def parse_args(argv: list[str]) -> JobConfig:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--summary", required=True, type=Path, help="where the run's totals are written (JSON)")
    p.add_argument("--topic", default=JobConfig.topic)
    p.add_argument("--raw-schema", default=JobConfig.raw_schema)
    p.add_argument("--max-offsets-per-trigger", type=int, default=JobConfig.max_offsets_per_trigger)
    return JobConfig(**{k.replace("-", "_"): v for k, v in vars(p.parse_args(argv)).items()})


def kafka_messages(spark: SparkSession, cfg: JobConfig) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.bootstrap)
        .option("subscribe", cfg.topic)
        .option("startingOffsets", "earliest")  # the first run reads the topic's whole retention
        .option("maxOffsetsPerTrigger", cfg.max_offsets_per_trigger)
        # Retention may delete offsets that were never read (ingest down for 7 days): carry on
        # from the earliest left rather than stop the hourly run; the loss is Kafka's retention.
        .option("failOnDataLoss", "false")
        .load()
    )


def message_rows(messages: DataFrame) -> DataFrame:
    """Kafka's coordinates and the value as text: all the loader needs (it parses the JSON
    itself, to tell a number from a string exactly)."""
    return messages.select("topic", "partition", "offset", "timestamp", F.col("value").cast("string").alias("value"))


def build_pipeline(messages: DataFrame, loader: MobileEventsLoader, cfg: JobConfig) -> DataStreamWriter:
    def load(batch: DataFrame, batch_id: int) -> None:
        result = loader.load(batch_id, message_rows(batch).toArrow().to_pylist())
        print(f"{STREAM_NAME}: batch {batch_id} {json.dumps(result.as_dict())}", flush=True)

    return (
        messages.writeStream.queryName(STREAM_NAME)
        .foreachBatch(load)
        .option("checkpointLocation", cfg.checkpoint)
        .trigger(availableNow=True)
    )


def spark_session() -> SparkSession:
    return (
        SparkSession.builder.appName("flowgate-mobile-events")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    loader = MobileEventsLoader(os.environ[WAREHOUSE_DSN_ENV], identity_key_from_env(), cfg.raw_schema)
    spark = spark_session()
    spark.sparkContext.setLogLevel("WARN")
    try:
        build_pipeline(kafka_messages(spark, cfg), loader, cfg).start().awaitTermination()
    finally:
        loader.close()
        spark.stop()
    cfg.summary.write_text(json.dumps(loader.totals.as_dict()))
    print(f"{STREAM_NAME}: done {json.dumps(loader.totals.as_dict())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

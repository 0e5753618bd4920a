"""Application-log stream: app.logs → raw lake + OpenSearch + alert rules → Alertmanager.

Spark reads the topic in bounded micro-batches (``maxOffsetsPerTrigger``: a spike waits in
Kafka, not in memory) and checkpoints the offsets. Per batch it hands Kafka's coordinates
and the raw bytes to ``flowgate.logs.stream.BatchProcessor`` on the driver as Arrow, which
parses only what the rules need (``flowgate.logs.fields``: cheaper there than Spark's
``from_json`` into maps plus shipping its result): the raw lines go to the lake as
received, WARN+ lines to OpenSearch behind it, the counts to the event-time rule engine,
and the alerts to Alertmanager. After a crash Spark replays the uncommitted batch
with the same id and offsets: it rewrites the same lake objects, re-indexes the same
documents, and is evaluated from the rule state saved before it.

    spark-submit --jars <kafka connector jars> spark_jobs/app_logs.py \
        --bootstrap 127.0.0.1:9092 --checkpoint DIR --heartbeat FILE --state DIR \
        --opensearch-url http://127.0.0.1:9200 --alertmanager-url http://127.0.0.1:9193

The lake's S3 endpoint and credentials come from the environment (FLOWGATE_LAKE_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never argv.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter

from flowgate.common.alertmanager import AlertmanagerClient
from flowgate.common.spark_listener import HeartbeatListener
from flowgate.logs import TOPIC, search
from flowgate.logs.lake import LAKE_BUCKET, query_tag
from flowgate.logs.rules import load_rules
from flowgate.logs.stream import BatchProcessor, StateStore

STREAM_NAME = "app_logs"
LAKE_ENDPOINT_ENV = "FLOWGATE_LAKE_ENDPOINT"


@dataclass(frozen=True)
class JobConfig:
    bootstrap: str
    checkpoint: str
    heartbeat: Path
    state: Path
    opensearch_url: str
    alertmanager_url: str
    topic: str = TOPIC
    max_offsets_per_trigger: int = 200_000
    starting_offsets: str = "earliest"
    trigger_s: float = 1.0
    # Where this job writes and what its alerts say: a drill or a bench gets a lake bucket,
    # an index prefix and an ``env`` label of its own, so it can clean up after itself and
    # its alerts never merge with another stream's in Alertmanager.
    lake_bucket: str = LAKE_BUCKET
    index_prefix: str = search.INDEX_PREFIX
    alert_env: str | None = None  # default: the rules file's engine.env


def parse_args(argv: list[str]) -> JobConfig:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--heartbeat", required=True, type=Path)
    p.add_argument("--state", required=True, type=Path)
    p.add_argument("--opensearch-url", required=True)
    p.add_argument("--alertmanager-url", required=True)
    p.add_argument("--topic", default=JobConfig.topic)
    p.add_argument("--max-offsets-per-trigger", type=int, default=JobConfig.max_offsets_per_trigger)
    p.add_argument("--starting-offsets", default=JobConfig.starting_offsets)
    p.add_argument("--trigger-s", type=float, default=JobConfig.trigger_s)
    p.add_argument("--lake-bucket", default=JobConfig.lake_bucket)
    p.add_argument("--index-prefix", default=JobConfig.index_prefix,
                   help="daily indices <prefix>-YYYY.MM.DD; keep it under app-logs-* for the index template")
    p.add_argument("--alert-env", default=None, help="the env label of the alerts (default: the rules file's)")
    return JobConfig(**{k.replace("-", "_"): v for k, v in vars(p.parse_args(argv)).items()})


def kafka_lines(spark: SparkSession, cfg: JobConfig) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", cfg.bootstrap)
        .option("subscribe", cfg.topic)
        .option("startingOffsets", cfg.starting_offsets)
        .option("maxOffsetsPerTrigger", cfg.max_offsets_per_trigger)
        # Retention may delete offsets a stopped stream had not read: carry on from the
        # earliest left (the loss is Kafka's retention, sized in ttl.yaml), don't stop.
        .option("failOnDataLoss", "false")
        .option("kafka.fetch.max.wait.ms", 50)
        .load()
    )


def raw(lines: DataFrame) -> DataFrame:
    """Kafka's coordinates and the raw bytes (``flowgate.logs.fields.RAW_COLUMNS``)."""
    return lines.select("partition", "offset", F.unix_millis("timestamp").alias("kafka_ts_ms"), "value")


def build_pipeline(lines: DataFrame, processor: BatchProcessor, cfg: JobConfig, on_batch) -> DataStreamWriter:
    def process_batch(batch: DataFrame, batch_id: int) -> None:
        # The query's id, from the checkpoint Spark wrote it to when the query first started
        # (a foreachBatch session does not list the query among its active streams).
        processor.query = processor.query or query_tag(checkpoint_query_id(cfg.checkpoint))
        processor.process(batch_id, raw(batch).toArrow())
        on_batch()

    return (
        lines.writeStream.queryName(STREAM_NAME)
        .foreachBatch(process_batch)
        .option("checkpointLocation", cfg.checkpoint)
        .trigger(processingTime=f"{cfg.trigger_s} seconds")
    )


def checkpoint_query_id(checkpoint: str) -> str:
    import json

    return json.loads((Path(checkpoint) / "metadata").read_text())["id"]


def lake_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ[LAKE_ENDPOINT_ENV], region_name="us-east-1")


def retry_pending_between_batches(processor: BatchProcessor, heartbeat: HeartbeatListener,
                                  every_s: float = 2.0) -> threading.Thread:
    """A daemon thread: what an outage left pending (lake objects to index, alerts to post)
    is retried while no batch comes, and the heartbeat shows it."""
    def loop() -> None:
        while True:
            time.sleep(every_s)
            try:
                if processor.retry_pending(idle_s=every_s):
                    heartbeat.refresh_app()
            except Exception as exc:  # noqa: BLE001 - the next batch or round tries again
                print(f"{STREAM_NAME}: retrying pending work failed: {exc!r}", flush=True)

    thread = threading.Thread(target=loop, name="retry-pending", daemon=True)
    thread.start()
    return thread


def spark_session() -> SparkSession:
    return (
        SparkSession.builder.appName("flowgate-app-logs")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    rules = load_rules()
    if cfg.alert_env:
        rules = rules.model_copy(update={"engine": rules.engine.model_copy(update={"env": cfg.alert_env})})
    processor = BatchProcessor(rules, lake_client(), search.SearchClient(cfg.opensearch_url),
                               AlertmanagerClient(cfg.alertmanager_url), StateStore(cfg.state),
                               bucket=cfg.lake_bucket, index_prefix=cfg.index_prefix)
    spark = spark_session()
    spark.sparkContext.setLogLevel("WARN")
    heartbeat = HeartbeatListener(STREAM_NAME, cfg.heartbeat, lambda: vars(processor.totals))
    processor.on_progress = heartbeat.refresh_app
    spark.streams.addListener(heartbeat)
    gc.freeze()
    query = build_pipeline(kafka_lines(spark, cfg), processor, cfg, heartbeat.refresh_app).start()
    retry_pending_between_batches(processor, heartbeat)
    print(f"{STREAM_NAME}: query {query.id} started, {len(rules.rules)} rules", flush=True)
    query.awaitTermination()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

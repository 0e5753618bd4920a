"""Platform smoke job: read a Kafka topic with Spark and find one marker message.

Proves that spark-submit, the Kafka connector jars and the broker work together.
Usage: spark-submit --jars <connector jars> platform_smoke_kafka.py BOOTSTRAP TOPIC MARKER
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def messages_with_key(kafka_rows: DataFrame, marker: str) -> DataFrame:
    """The Kafka rows whose key is ``marker`` (keys arrive as bytes)."""
    return kafka_rows.where(F.col("key").cast("string") == F.lit(marker))


def read_topic(spark: SparkSession, bootstrap: str, topic: str) -> DataFrame:
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )


def main(argv: list[str]) -> int:
    bootstrap, topic, marker = argv
    spark = SparkSession.builder.appName("flowgate-platform-smoke").getOrCreate()
    try:
        found = messages_with_key(read_topic(spark, bootstrap, topic), marker).count()
    finally:
        spark.stop()
    print(f"platform smoke: {found} message(s) with key {marker} in {topic}")
    return 0 if found >= 1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

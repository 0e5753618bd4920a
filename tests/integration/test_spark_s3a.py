"""Spark's S3A against the stack's S3 API, the way a lake job reaches it: the jars from
FLOWGATE_SPARK_S3_JARS (hadoop-aws and individual AWS SDK v2 modules, no bundle), the
settings from the ``lake_s3`` connection, its keys through the environment."""

from __future__ import annotations

import gzip
import json
import os
import uuid

import pytest

from flowgate.common.spark import s3a_conf, s3a_credentials_conf, s3a_env, s3a_jars, spark_jars
from flowgate.devstack import services, stack

pytestmark = pytest.mark.integration

LAKE = "flowgate-lake"


@pytest.fixture(scope="module")
def lake(stack_config):
    """The stack's S3 API alone (not Airflow): started for this module if it was not running."""
    with stack.running(stack_config, {"s3"}):
        yield services.s3_client(stack_config)


@pytest.fixture(scope="module")
def spark(lake, tmp_path_factory):
    from pyspark.sql import SparkSession

    jars = s3a_jars()
    assert jars, "FLOWGATE_SPARK_S3_JARS is empty: run `make setup`"
    saved = dict(os.environ)
    os.environ.update(s3a_env())  # what a submit gives the driver: keys in its environment
    try:
        session = (
            SparkSession.builder.master("local[2]").appName("flowgate-test-s3a")
            .config("spark.jars", spark_jars(jars))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
            .config(map={**s3a_conf(), **s3a_credentials_conf()})
            .getOrCreate()
        )
        yield session
        session.stop()
        _stop_the_jvm()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _stop_the_jvm() -> None:
    """End the JVM pyspark started in this process: later tests get their memory back, and
    a later session starts with its own jars instead of inheriting these."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    gateway.proc.stdin.close()  # the gateway server exits when its stdin closes
    gateway.proc.wait(timeout=30)
    SparkContext._gateway = SparkContext._jvm = None


@pytest.fixture
def prefix(lake):
    prefix = f"raw/_test/s3a/{uuid.uuid4().hex}"
    yield prefix
    for page in lake.get_paginator("list_objects_v2").paginate(Bucket=LAKE, Prefix=prefix):
        if objects := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
            lake.delete_objects(Bucket=LAKE, Delete={"Objects": objects})


def _lines(n: int) -> list[dict]:
    return [{"time_unix_nano": 1_767_225_600_000_000_000 + i, "service": f"svc-{i % 3}",
             "severity_text": "ERROR" if i % 10 == 0 else "INFO", "body": f"line {i} ✓"} for i in range(n)]


def test_spark_writes_gzip_json_to_the_lake_and_reads_it_back(spark, lake, prefix):
    from pyspark.testing import assertDataFrameEqual

    lines = _lines(500)
    written = spark.createDataFrame(lines).repartition(2)
    url = f"s3a://{LAKE}/{prefix}/json"
    written.write.mode("overwrite").option("compression", "gzip").json(url)

    assertDataFrameEqual(spark.read.json(url), written)

    # What a reader outside Spark sees: only committed parts (the job's _temporary tree,
    # renamed by copy + delete, is gone) and a marker that the job succeeded.
    keys = [o["Key"].removeprefix(f"{prefix}/json/") for o in lake.list_objects_v2(Bucket=LAKE, Prefix=prefix)["Contents"]]
    parts = [k for k in keys if k.startswith("part-")]
    assert sorted(set(keys) - set(parts)) == ["_SUCCESS"], keys
    assert len(parts) == 2 and all(k.endswith(".json.gz") for k in parts), parts
    # The objects are real gzip files of JSON lines, readable with boto3 alone.
    read_back = []
    for key in parts:
        body = lake.get_object(Bucket=LAKE, Key=f"{prefix}/json/{key}")["Body"].read()
        read_back += [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    assert sorted(read_back, key=lambda r: r["time_unix_nano"]) == lines


def test_spark_writes_raw_text_lines_as_received(spark, lake, prefix):
    """The raw lake keeps a line exactly as it came (the job stores the value, not a parse)."""
    raw = [json.dumps(line) for line in _lines(50)] + ["not json {", ""]
    url = f"s3a://{LAKE}/{prefix}/text"
    spark.createDataFrame([(r,) for r in raw], "value string").coalesce(1).write.option("compression", "gzip").text(url)

    assert sorted(r.value for r in spark.read.text(url).collect()) == sorted(raw)
    (part,) = [o["Key"] for o in lake.list_objects_v2(Bucket=LAKE, Prefix=f"{prefix}/text/part-")["Contents"]]
    assert part.endswith(".txt.gz")
    assert gzip.decompress(lake.get_object(Bucket=LAKE, Key=part)["Body"].read()).decode().splitlines() == raw


def test_s3a_lists_and_deletes_what_boto3_wrote(spark, lake, prefix):
    """Both ways round: S3A sees objects another client wrote (list v2, HEAD) and its
    recursive delete (bulk DeleteObjects) removes them for boto3 too."""
    for hour in ("03", "04"):
        lake.put_object(Bucket=LAKE, Key=f"{prefix}/dt=2026-01-01/hour={hour}/a.json", Body=b'{"n": 1}\n')
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"s3a://{LAKE}/{prefix}/dt=2026-01-01")
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    assert sorted(s.getPath().getName() for s in fs.listStatus(path)) == ["hour=03", "hour=04"]
    assert fs.getFileStatus(jvm.org.apache.hadoop.fs.Path(f"s3a://{LAKE}/{prefix}/dt=2026-01-01/hour=03/a.json")).getLen() == 9

    assert fs.delete(path, True)
    assert lake.list_objects_v2(Bucket=LAKE, Prefix=f"{prefix}/dt=")["KeyCount"] == 0
    # S3A keeps the parent "directory" alive with a marker object, as a filesystem would.
    assert [o["Key"] for o in lake.list_objects_v2(Bucket=LAKE, Prefix=prefix)["Contents"]] == [f"{prefix}/"]


def test_s3a_uploads_and_renames_a_large_file_in_parts(spark, lake, prefix):
    """Compacted hours are large: S3A writes them as multipart uploads and a rename (the
    commit) copies them server-side. Parts of 5 MiB (S3's minimum) keep the test small."""
    jvm = spark.sparkContext._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark.sparkContext._jsc.hadoopConfiguration())
    for key in ("fs.s3a.multipart.size", "fs.s3a.multipart.threshold"):
        conf.set(key, str(5 * 2**20))
    conf.set("fs.s3a.impl.disable.cache", "true")  # a filesystem of its own, with these settings
    staged = jvm.org.apache.hadoop.fs.Path(f"s3a://{LAKE}/{prefix}/_temporary/hour=00.json.gz")
    final = jvm.org.apache.hadoop.fs.Path(f"s3a://{LAKE}/{prefix}/hour=00.json.gz")
    fs = staged.getFileSystem(conf)
    data = os.urandom(12 * 2**20)  # incompressible, like gzip output
    out = fs.create(staged, True)
    for start in range(0, len(data), 2**20):
        out.write(bytearray(data[start:start + 2**20]))
    out.close()
    assert lake.head_object(Bucket=LAKE, Key=f"{prefix}/_temporary/hour=00.json.gz")["ETag"].endswith('-3"')

    assert fs.rename(staged, final)
    fs.close()
    keys = [o["Key"] for o in lake.list_objects_v2(Bucket=LAKE, Prefix=prefix)["Contents"]]
    assert f"{prefix}/hour=00.json.gz" in keys and not any("hour=00" in k and "_temporary" in k for k in keys)
    assert lake.get_object(Bucket=LAKE, Key=f"{prefix}/hour=00.json.gz")["Body"].read() == data

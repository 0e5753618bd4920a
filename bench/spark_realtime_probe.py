"""Probe: what Spark Structured Streaming's real-time mode accepts in PySpark, and its latency.

    export FLOWGATE_HOME=/tmp/fg-h4 FLOWGATE_KAFKA_PORT=59092 FLOWGATE_KAFKA_CONTROLLER_PORT=59093
    .venv/bin/python bench/spark_realtime_probe.py [--rate 1000] [--seconds 20] [--checkpoint "5 seconds"]

Real-time mode (``trigger(realTime=...)``, Spark >= 4.1) runs long-lived tasks that read
Kafka continuously and write each row as it comes; the trigger's duration is only how often
progress is checkpointed. It plans a query only if every physical operator and the sink are
on an allow-list (``RealTimeModeAllowlist`` in spark-sql; the check can be switched off with
``spark.sql.streaming.realTimeMode.allowlistCheck=false``, "at your own risk"), and it needs
one task slot per Kafka partition for the whole batch.

For each query shape the fraud job could take — (a) projection, (b) from_json + filter +
to_json, (c) a Python UDF, (d) a pandas UDF and mapInPandas, (e) foreachBatch and a Python
``foreach`` writer — the probe starts it in real-time mode (Kafka source, ``update`` output)
on topics of its own and records "accepted" or the exception. An operator refused by the
allow-list is tried once more with the check off, to see whether it would run at all.
Every query that runs gets a latency run: ``rate`` messages a second for ``seconds`` from
confluent_kafka; a separate process consumes the output topic; a message's latency is its
arrival there minus its input CreateTime, which the query carries through as the
``<ms>|`` prefix of the output value. The same is measured for (b) with a micro-batch
trigger (``processingTime="0 seconds"``, with and without async progress tracking), and
for Kafka alone (produce → consume, no Spark): the floor.

Uses the local stack's Kafka (starts it, and stops it again, only if it was not running).
Spark runs in local mode with one core per input partition (local[2], 2 partitions).
Prints a table, then one line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd  # module level: pandas_udf resolves its type hints from here

PARTITIONS = 2  # as payments.events; local[2] gives one core per partition
WARMUP_MESSAGES = 200
START_WAIT_S = 8.0  # a refused query fails while its first batch is planned
PAYLOAD_SCHEMA = "id STRING, amount DOUBLE, merchant STRING, sealed STRING"


# --- the local stack's Kafka --------------------------------------------------------------

@contextmanager
def local_kafka():
    """The stack's Kafka broker, started (and later stopped) only if it is not running."""
    from flowgate.devstack import kafka, stack
    from flowgate.devstack.config import StackConfig

    with stack.running(StackConfig.from_env(), {"kafka"}) as cfg:
        yield cfg, kafka.bootstrap_servers(cfg)


def admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def create_topics(bootstrap: str, *names: str) -> None:
    from confluent_kafka.admin import NewTopic

    client = admin(bootstrap)  # kept referenced until the futures resolve
    futures = client.create_topics(
        [NewTopic(n, num_partitions=PARTITIONS, replication_factor=1) for n in names], operation_timeout=30)
    for future in futures.values():
        future.result()


def delete_topics(bootstrap: str, *names: str) -> None:
    client = admin(bootstrap)
    for future in client.delete_topics(list(names), operation_timeout=30).values():
        try:
            future.result()
        except Exception:  # already gone: nothing to clean
            pass


def messages(prefix: str, count: int) -> list[tuple[str, bytes]]:
    """``count`` payment-like JSON events of about 400 bytes, keyed ``prefix-i``."""
    sealed = "x" * 300
    return [(f"{prefix}-{i}", json.dumps({"id": f"{prefix}-{i}", "amount": 1.0 + i % 500,
                                          "merchant": f"m-{i % 97}", "sealed": sealed}).encode())
            for i in range(count)]


def produce(bootstrap: str, topic: str, events, rate: float):
    from flowgate.fraud import gateway  # the fraud bench's pacing: CreateTime = produce time

    return gateway.produce(bootstrap, topic, events, rate_per_s=rate)


# --- latency: a consumer in its own process -------------------------------------------------

def consume_latencies(bootstrap: str, topic: str, expected: int, timeout_s: float, floor: bool,
                      results, ready) -> None:
    """Child process: read ``topic`` from its current end until ``expected`` distinct keys
    (or the timeout); puts ({key: latency_ms}, messages). The input CreateTime is the
    ``<ms>|`` prefix of the value, or for the floor the message's own CreateTime."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rt-probe-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 5})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions]
    consumer.assign([TopicPartition(topic, p, end) for p, end in zip(partitions, ends, strict=True)])
    consumer.poll(0.5)  # connections and fetch sessions set up before the first message is due
    ready.set()
    latencies, count, deadline = {}, 0, time.monotonic() + timeout_s
    while len(latencies) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.1)
        if message is None or message.error():
            continue
        received = time.time()
        count += 1
        if floor:
            produced_ms = message.timestamp()[1]
        else:
            produced_ms = int(message.value().split(b"|", 1)[0])
        latencies.setdefault(message.key(), received * 1000 - produced_ms)
    consumer.close()
    results.put((latencies, count))


def measure(bootstrap: str, in_topic: str, out_topic: str, rate: int, seconds: float, floor: bool = False) -> dict:
    """Produce ``rate``/s for ``seconds`` to ``in_topic``; latencies as seen on ``out_topic``."""
    count = int(rate * seconds)
    ctx = multiprocessing.get_context("spawn")  # this process runs librdkafka and JVM threads
    results, ready = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=consume_latencies,
                        args=(bootstrap, out_topic, count, seconds + 60, floor, results, ready))
    child.start()
    ready.wait(60)
    report = produce(bootstrap, in_topic, messages(f"m{uuid.uuid4().hex[:6]}", count), rate)
    latencies, received = results.get(timeout=seconds + 120)
    child.join()
    return {"produced": report.produced, "achieved_rate": round(report.achieved_rate, 1),
            "received": len(latencies), "out_messages": received, **percentiles(list(latencies.values()))}


def percentiles(latencies_ms: list[float]) -> dict:
    if len(latencies_ms) < 2:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    q = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(max(latencies_ms), 1)}


def wait_for_output(bootstrap: str, topic: str, keys: set[bytes], timeout_s: float) -> int:
    """Read ``topic`` from the start until every key in ``keys`` arrived (or the timeout)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rt-warm-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, deadline = set(), time.monotonic() + timeout_s
    while not keys <= seen and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            seen.add(message.key())
    consumer.close()
    return len(keys & seen)


# --- Spark ------------------------------------------------------------------------------------

def spark_session(repo: Path):
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(str(repo / ".flowgate" / "jars" / "spark-kafka" / "*.jar")))
    # Python workers from this venv (pandas, pyarrow, confluent_kafka). Outside spark-submit the
    # workers follow PYSPARK_PYTHON; spark.pyspark.python alone left them on the system python3.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(f"local[{PARTITIONS}]").appName("spark-realtime-probe")
             .config("spark.jars", ",".join(jars))
             .config("spark.sql.shuffle.partitions", str(PARTITIONS))
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.pyspark.python", sys.executable)
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def kafka_source(spark, bootstrap: str, topic: str):
    return (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic).option("startingOffsets", "earliest").load())


def with_input_time(df):
    """key, value as string, and ts = the input's CreateTime in ms (carried to the output)."""
    from pyspark.sql import functions as F

    return df.select("key", F.col("value").cast("string").alias("value"),
                     F.unix_millis("timestamp").alias("ts"))


def stamped(ts_col, value_col):
    """The output value: ``<input CreateTime ms>|<value>``."""
    from pyspark.sql import functions as F

    return F.concat(ts_col.cast("string"), F.lit("|"), value_col).alias("value")


def q_projection(src):
    from pyspark.sql import functions as F

    return src.select("key", stamped(F.unix_millis("timestamp"), F.col("value").cast("string")))


def q_json_filter(src):
    from pyspark.sql import functions as F

    parsed = with_input_time(src).select("key", "ts", F.from_json("value", PAYLOAD_SCHEMA).alias("p"))
    kept = parsed.where(F.col("p.amount") > 0)
    out = F.to_json(F.struct(F.col("p.id").alias("transaction_id"), F.col("p.amount").alias("amount"),
                             F.col("p.merchant").alias("merchant"), (F.col("p.amount") > 400).alias("flag")))
    return kept.select("key", stamped(F.col("ts"), out))


def q_python_udf(src):
    from pyspark.sql import functions as F

    @F.udf("string")
    def tokenize(value):
        return value.replace('"sealed"', '"token"')

    df = with_input_time(src)
    return df.select("key", stamped(F.col("ts"), tokenize("value")))


def q_pandas_udf(src):
    from pyspark.sql import functions as F

    @F.pandas_udf("string")
    def tokenize(values: pd.Series) -> pd.Series:  # hints resolved from the module's globals
        return values.str.replace('"sealed"', '"token"', regex=False)

    df = with_input_time(src)
    return df.select("key", stamped(F.col("ts"), tokenize("value")))


def q_map_in_pandas(src):
    from pyspark.sql import functions as F

    def tokenize_batches(frames):  # what a batch call to the tokenizer would look like
        for frame in frames:
            frame["value"] = frame["ts"].astype(str) + "|" + frame["value"].str.replace(
                '"sealed"', '"token"', regex=False)
            yield frame[["key", "value"]]

    df = with_input_time(src)
    return df.mapInPandas(tokenize_batches, "key BINARY, value STRING").select("key", F.col("value"))


class KafkaForeachWriter:
    """A Python ``foreach`` writer that produces each row to Kafka as it is processed."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap, self.topic, self.producer = bootstrap, topic, None

    def open(self, partition_id, epoch_id):
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 0})
        return True

    def process(self, row):
        self.producer.produce(self.topic, key=row["key"], value=f"{row['ts']}|{row['value']}".encode())
        self.producer.poll(0)

    def close(self, error):
        if self.producer is not None:
            self.producer.flush(10)


@dataclass(frozen=True)
class Probe:
    name: str
    label: str
    build: object  # source DataFrame -> output DataFrame (None for foreach/foreachBatch)
    sink: str = "kafka"  # kafka | foreach | foreachBatch


PROBES = (
    Probe("a_projection", "(a) select key, value → Kafka", q_projection),
    Probe("b_json_filter", "(b) from_json + filter + to_json → Kafka", q_json_filter),
    Probe("c_python_udf", "(c) Python UDF (F.udf) → Kafka", q_python_udf),
    Probe("d1_pandas_udf", "(d) pandas UDF (F.pandas_udf) → Kafka", q_pandas_udf),
    Probe("d2_map_in_pandas", "(d) mapInPandas → Kafka", q_map_in_pandas),
    Probe("e1_foreach_batch", "(e) foreachBatch", None, sink="foreachBatch"),
    Probe("e2_foreach_writer", "(e) foreach(Python writer → Kafka)", None, sink="foreach"),
)


def start_query(spark, probe: Probe, bootstrap: str, in_topic: str, out_topic: str, checkpoint: Path,
                trigger: dict, options: dict | None = None):
    src = kafka_source(spark, bootstrap, in_topic)
    writer_opts = {"checkpointLocation": str(checkpoint), **(options or {})}
    if probe.sink == "kafka":
        writer = (probe.build(src).writeStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
                  .option("topic", out_topic).option("kafka.linger.ms", "0"))
    elif probe.sink == "foreach":
        writer = with_input_time(src).writeStream.foreach(KafkaForeachWriter(bootstrap, out_topic))
    else:
        from confluent_kafka import Producer

        def write_batch(batch, _batch_id):
            producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
            for row in batch.collect():
                producer.produce(out_topic, key=row["key"], value=f"{row['ts']}|{row['value']}".encode())
            producer.flush(10)

        writer = with_input_time(src).writeStream.foreachBatch(write_batch)
    for key, value in writer_opts.items():
        writer = writer.option(key, value)
    return writer.outputMode("update").trigger(**trigger).queryName(f"{probe.name}_{uuid.uuid4().hex[:6]}").start()


def describe_error(error: BaseException) -> dict:
    """Exception class, Spark error condition when there is one, and the message's first lines."""
    condition = None
    for getter in ("getCondition", "getErrorClass"):
        try:
            condition = getattr(error, getter)()
            break
        except Exception:
            continue
    text = str(error)
    # A failed query wraps the cause: "[STREAM_FAILED] Query [...] terminated with exception: <cause>".
    marker = "terminated with exception: "
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line for line in text.splitlines() if line.strip()]
    cause = lines[0].split("]", 1)[0].lstrip("[") if lines and lines[0].startswith("[") else None
    python_error = next((line.strip() for line in reversed(lines)
                         if cause == "PYTHON_EXCEPTION" and not line.startswith((" ", "\t"))
                         and ("Error" in line or "Exception" in line)), None)
    return {"exception": type(error).__name__, "condition": condition, "cause": cause,
            "message": "\n".join(lines[:4] + ([python_error] if python_error else []))}


def refusal_status(error: dict, when: str) -> str:
    """Real-time mode's own checks say "refused"; anything else is a failure of the query."""
    refused = "STREAMING_REAL_TIME_MODE" in f"{error.get('cause')} {error.get('message')}"
    return f"refused {when}" if refused else f"failed {when}"


def wait_accepted(query) -> dict | None:
    """None while the query runs; the error description if it stopped during START_WAIT_S."""
    try:
        query.awaitTermination(START_WAIT_S)
    except Exception as error:  # the query's failure, raised as StreamingQueryException
        return describe_error(error)
    if not query.isActive:
        error = query.exception()
        return describe_error(error) if error else {"exception": None, "condition": None,
                                                     "message": "query ended on its own"}
    return None


def run_probe(spark, probe: Probe, bootstrap: str, state: Path, trigger: dict, rate: int, seconds: float,
              options: dict | None = None, confs: dict | None = None) -> dict:
    """Start ``probe`` with ``trigger``; if it runs, warm it up and measure its latency."""
    tag = uuid.uuid4().hex[:8]
    in_topic, out_topic = f"rtprobe.{probe.name}.in.{tag}", f"rtprobe.{probe.name}.out.{tag}"
    create_topics(bootstrap, in_topic, out_topic)
    for key, value in (confs or {}).items():
        spark.conf.set(key, value)
    query = None
    result = {"probe": probe.name, "label": probe.label, "trigger": trigger, "confs": confs or {},
              "options": options or {}, "load_avg_1m": round(os.getloadavg()[0], 2)}
    try:
        try:
            query = start_query(spark, probe, bootstrap, in_topic, out_topic, state / tag, trigger, options)
        except Exception as error:  # refused when the query is defined or started
            error = describe_error(error)
            return {**result, "status": refusal_status(error, "at start()"), **error}
        error = wait_accepted(query)
        if error:
            return {**result, "status": refusal_status(error, "in 1st batch"), **error}
        warm = messages(f"w{tag}", WARMUP_MESSAGES)
        produce(bootstrap, in_topic, warm, rate=200)
        arrived = wait_for_output(bootstrap, out_topic, {k.encode() for k, _ in warm}, timeout_s=60)
        if query.exception() is not None or not query.isActive:
            return {**result, "status": "failed while running", **describe_error(query.exception())}
        if arrived < WARMUP_MESSAGES:
            return {**result, "status": f"accepted, but only {arrived}/{WARMUP_MESSAGES} warm-up rows arrived"}
        figures = measure(bootstrap, in_topic, out_topic, rate, seconds)
        failure = query.exception()
        status = "accepted" if failure is None else "failed while running"
        return {**result, "status": status, **figures, **(describe_error(failure) if failure else {})}
    finally:
        if query is not None:
            try:
                query.stop()
            except Exception:
                traceback.print_exc()
        for key in (confs or {}):
            spark.conf.unset(key)
        delete_topics(bootstrap, in_topic, out_topic)


def kafka_floor(bootstrap: str, rate: int, seconds: float) -> dict:
    """Produce → consume on one plain topic: what Kafka alone costs on this machine."""
    topic = f"rtprobe.floor.{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, topic)
    try:
        return {"probe": "kafka_floor", "label": "Kafka produce → consume, no Spark", "status": "measured",
                "load_avg_1m": round(os.getloadavg()[0], 2),
                **measure(bootstrap, topic, topic, rate, seconds, floor=True)}
    finally:
        delete_topics(bootstrap, topic)


def is_allowlist_refusal(result: dict) -> bool:
    return "NOT_IN_ALLOWLIST" in f"{result.get('cause')} {result.get('message')}"


# --- report -----------------------------------------------------------------------------------

def print_table(rows: list[dict]) -> None:
    print(f"\n{'query':<58} {'trigger':<24} {'status':<22} {'recv':>6} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}")
    for r in rows:
        trigger = ",".join(f"{k}={v}" for k, v in r.get("trigger", {}).items()) or "-"
        label = r["label"] + (" [allowlist off]" if r.get("confs") else "") + (
            " [async progress]" if r.get("options") else "")
        status = r["status"] if len(r["status"]) <= 22 else r["status"][:21] + "…"
        figs = [r.get(k) for k in ("received", "p50_ms", "p95_ms", "p99_ms", "max_ms")]
        print(f"{label:<58} {trigger:<24} {status:<22} " + " ".join(
            f"{'-' if v is None else v:>{6 if i == 0 else 8}}" for i, v in enumerate(figs)))
    refused = [r for r in rows if r.get("exception") or r["status"].startswith(("refused", "failed"))]
    if refused:
        print("\nrefusals and failures:")
        for r in refused:
            print(f"- {r['label']}{' [allowlist off]' if r.get('confs') else ''}: {r['status']}: "
                  f"{r.get('exception')} [{r.get('cause') or r.get('condition')}]")
            for line in (r.get("message") or "").splitlines():
                print(f"    {line[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--checkpoint", default="5 seconds", help="the realTime trigger's duration")
    parser.add_argument("--only", default="", help="comma-separated probe names, among them b_microbatch "
                                                   "and b_microbatch_async (default: all)")
    args = parser.parse_args()
    wanted = {n for n in args.only.split(",") if n}
    repo = Path(__file__).resolve().parents[1]

    import pyspark

    rows: list[dict] = []
    with local_kafka() as (cfg, bootstrap):
        state_root = cfg.state_dir / "tmp"
        state_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="spark-rt-probe-", dir=state_root) as tmp:
            state = Path(tmp)
            rows.append(kafka_floor(bootstrap, args.rate, min(args.seconds, 15)))
            spark = spark_session(repo)
            try:
                realtime = {"realTime": args.checkpoint}
                for probe in PROBES:
                    if wanted and probe.name not in wanted:
                        continue
                    result = run_probe(spark, probe, bootstrap, state, realtime, args.rate, args.seconds)
                    rows.append(result)
                    print(f"{probe.name}: {result['status']}", flush=True)
                    if is_allowlist_refusal(result):  # would it run at all, with the check off?
                        bypass = run_probe(spark, probe, bootstrap, state, realtime, args.rate, args.seconds,
                                           confs={"spark.sql.streaming.realTimeMode.allowlistCheck": "false"})
                        rows.append(bypass)
                        print(f"{probe.name} [allowlist off]: {bypass['status']}", flush=True)
                json_filter = next(p for p in PROBES if p.name == "b_json_filter")
                micro = {"processingTime": "0 seconds"}
                if not wanted or "b_microbatch" in wanted:
                    rows.append(run_probe(spark, json_filter, bootstrap, state, micro, args.rate, args.seconds))
                if not wanted or "b_microbatch_async" in wanted:
                    rows.append(run_probe(spark, json_filter, bootstrap, state, micro, args.rate, args.seconds,
                                          options={"asyncProgressTrackingEnabled": "true"}))
            finally:
                spark.stop()
            floor_after = kafka_floor(bootstrap, args.rate, min(args.seconds, 15))
            rows.append({**floor_after, "probe": "kafka_floor_after", "label": "Kafka floor, again after Spark"})

    print(f"\nSpark real-time mode probe: pyspark {pyspark.__version__}, local[{PARTITIONS}], "
          f"{PARTITIONS} input partitions, {args.rate} msg/s for {args.seconds:.0f} s per query; "
          f"latency = output arrival − input CreateTime")
    print_table(rows)
    print(json.dumps({"bench": "spark_realtime_probe", "pyspark": pyspark.__version__, "rate": args.rate,
                      "seconds": args.seconds, "partitions": PARTITIONS, "results": rows}, default=str))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))
    main()

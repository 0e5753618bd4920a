"""The fraud stream as the supervisor sees it: which job, with which arguments, where.

Everything comes from Airflow connections (Kafka, the tokenizer, the fraud store, Spark)
so the same spec works locally, in Docker and in production. The store's credentials
travel in the driver's environment, never on its command line.
"""

from __future__ import annotations

from pathlib import Path

from flowgate.common import connections
from flowgate.common.spark import kafka_connector_jars, spark_job
from flowgate.common.stream_supervisor import HealthBudget, StreamSpec, stream_conf, streams_root

STREAM_NAME = "fraud_detection"
KAFKA_CONN_ID = "kafka_default"
TOKENIZER_CONN_ID = "tokenizer"
STORE_CONN_ID = "fraud_store"
SPARK_CONN_ID = "spark_default"
STORE_DSN_ENV = "FLOWGATE_FRAUD_STORE_DSN"  # what spark_jobs/fraud_detection.py reads

# On-call's budget: a minute and a half without a heartbeat, or more than ~1 minute of
# traffic at 2,000 tx/s waiting in Kafka, is worth a page.
BUDGET = HealthBudget(stale_after_s=90, max_consumer_lag=120_000, startup_grace_s=180)


def fraud_stream_spec(*, extra_args: tuple[str, ...] = (), state_dir: Path | None = None) -> StreamSpec:
    state = state_dir or streams_root() / STREAM_NAME
    return StreamSpec(
        name=STREAM_NAME,
        job_file=spark_job("fraud_detection.py"),
        job_args=(
            "--bootstrap", connections.kafka_bootstrap(KAFKA_CONN_ID),
            "--tokenizer-url", connections.http_base_url(TOKENIZER_CONN_ID),
            "--checkpoint", str(state / "checkpoint"),
            "--heartbeat", str(state / "heartbeat.json"),
            *extra_args,
        ),
        state_dir=state,
        master=connections.spark_master(SPARK_CONN_ID),
        jars=kafka_connector_jars(),
        conf={**stream_conf(state),
              # C1 only: the driver plans and runs a small batch every ~100 ms, and C2 kept
              # compiling Spark's planner for minutes (0.5 of our 2 cores at first, still
              # 0.1 after 10 minutes). C1 is done in ~2.5 minutes. Once warm, C2's code
              # takes ~30% less JVM CPU, but p99 was no better (drills at 1,000 tx/s).
              "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
              # A batch is a few hundred rows read from Kafka and handed to Python: generating
              # and compiling Java for it (per task, for the Kafka reader's projection) costs
              # more than interpreting it (collect: ~10 ms less a batch).
              "spark.sql.codegen.factoryMode": "NO_CODEGEN",
              "spark.sql.codegen.wholeStage": "false",
              # Spark's status store keeps the last 1,000 SQL executions, jobs and stages
              # (the UI's history, though the UI is off) and trims them by sorting all of
              # them: two executions a batch made that a steady 0.03 core (element-tracking
              # thread) once the stream had run for two minutes. 50 is 0.01.
              "spark.sql.ui.retainedExecutions": "50", "spark.ui.retainedJobs": "50",
              "spark.ui.retainedStages": "50"},
        env={STORE_DSN_ENV: connections.postgres_dsn(STORE_CONN_ID)},
    )

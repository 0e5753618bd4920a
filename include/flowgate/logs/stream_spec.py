"""The application-log stream as the supervisor sees it: which job, with which arguments, where.

Everything comes from Airflow connections (Kafka, OpenSearch, Alertmanager, the lake's S3,
Spark), so the same spec works locally, in Docker and in production. The lake's
credentials travel in the driver's environment, never on its command line.
"""

from __future__ import annotations

from pathlib import Path

from flowgate.common import connections
from flowgate.common.spark import kafka_connector_jars, spark_job
from flowgate.common.stream_supervisor import HealthBudget, StreamSpec, stream_conf, streams_root

STREAM_NAME = "app_logs"
KAFKA_CONN_ID = "kafka_default"
LAKE_CONN_ID = "lake_s3"
OPENSEARCH_CONN_ID = "opensearch"
ALERTMANAGER_CONN_ID = "alertmanager"
SPARK_CONN_ID = "spark_default"

# Stale after 90 s without progress; a spike of 10x 116 lines/s for 10 minutes is ~700k
# lines: more than that waiting in Kafka means the stream no longer keeps up.
BUDGET = HealthBudget(stale_after_s=90, max_consumer_lag=1_000_000, startup_grace_s=180)


def lake_environment(conn_id: str = LAKE_CONN_ID) -> dict[str, str]:
    """The lake's endpoint and keys for the driver (boto3 reads AWS_* itself)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    return {"FLOWGATE_LAKE_ENDPOINT": extra.get("endpoint_url", ""), "AWS_ACCESS_KEY_ID": conn.login or "",
            "AWS_SECRET_ACCESS_KEY": conn.password or "", "AWS_DEFAULT_REGION": extra.get("region_name", "us-east-1")}


def app_logs_stream_spec(*, extra_args: tuple[str, ...] = (), state_dir: Path | None = None) -> StreamSpec:
    state = state_dir or streams_root() / STREAM_NAME
    return StreamSpec(
        name=STREAM_NAME,
        job_file=spark_job("app_logs.py"),
        job_args=(
            "--bootstrap", connections.kafka_bootstrap(KAFKA_CONN_ID),
            "--checkpoint", str(state / "checkpoint"),
            "--heartbeat", str(state / "heartbeat.json"),
            "--state", str(state / "rules"),
            "--opensearch-url", connections.http_base_url(OPENSEARCH_CONN_ID),
            "--alertmanager-url", connections.http_base_url(ALERTMANAGER_CONN_ID),
            *extra_args,
        ),
        state_dir=state,
        master=connections.spark_master(SPARK_CONN_ID),
        jars=kafka_connector_jars(),
        conf={**stream_conf(state), "spark.driver.memory": "2g"},
        env=lake_environment(),
    )

"""
### Platform smoke check

One round trip per component of the platform, each through its Airflow hook and
connection id: PostgreSQL (`warehouse`), Kafka (`kafka_default`), the S3 lake
(`lake_s3`), the partner SFTP server (`partner_sftp`), and a Spark job
(`spark_default`) that reads back from Kafka the message this run produced.

Run it after a deploy or when something looks off: green means every component
answers and the wiring between them holds. Each task fails with the component's name
and what it saw. Code: `include/flowgate/platform/smoke.py`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS
from flowgate.common.spark import SPARK_CONN_ID, kafka_connector_jars, spark_job

SMOKE_TOPIC = "platform.smoke"
LAKE_BUCKET = "flowgate-lake"


@dag(
    dag_id="platform_smoke",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["platform", "smoke"],
    doc_md=__doc__,
)
def platform_smoke():
    @task
    def postgres(run_id=None):
        from flowgate.platform import smoke

        return smoke.postgres_roundtrip("warehouse", smoke.marker_for(run_id))

    @task
    def kafka_produce(run_id=None):
        from flowgate.platform import smoke

        return smoke.kafka_produce("kafka_default", SMOKE_TOPIC, smoke.marker_for(run_id))

    @task
    def kafka_consume(produced: dict, run_id=None):
        from flowgate.platform import smoke

        return smoke.kafka_consume("kafka_default", SMOKE_TOPIC, smoke.marker_for(run_id),
                                   produced["partition"], produced["offset"])

    @task
    def s3(run_id=None):
        from flowgate.platform import smoke

        return smoke.s3_roundtrip("lake_s3", LAKE_BUCKET, smoke.marker_for(run_id))

    @task
    def sftp(run_id=None):
        from flowgate.platform import smoke

        return smoke.sftp_roundtrip("partner_sftp", smoke.marker_for(run_id))

    spark_reads_kafka = SparkSubmitOperator(
        task_id="spark_reads_kafka",
        conn_id=SPARK_CONN_ID,
        application=spark_job("platform_smoke_kafka.py"),
        jars=kafka_connector_jars(),
        application_args=[
            "{{ conn.kafka_default.extra_dejson['bootstrap.servers'] }}",
            SMOKE_TOPIC,
            "{{ ti.xcom_pull(task_ids='kafka_produce')['key'] }}",
        ],
        name="flowgate-platform-smoke",
        verbose=False,
    )

    produced = kafka_produce()
    kafka_consume(produced) >> spark_reads_kafka
    postgres()
    s3()
    sftp()


platform_smoke()

"""What every Spark submission of the platform shares."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SPARK_CONN_ID = "spark_default"

# The Kafka connector jars (resolved by Maven at setup, see devstack/jars/spark-kafka.pom.xml).
# The deployment sets FLOWGATE_SPARK_JARS: the stack's .env locally, the image in Docker.
SPARK_JARS_ENV = "FLOWGATE_SPARK_JARS"


def kafka_connector_jars() -> str:
    return os.environ.get(SPARK_JARS_ENV, "")


def spark_job(name: str) -> str:
    """Path of a job file in spark_jobs/ (the same file runs on local[*] and on a cluster)."""
    return str(Path(__file__).resolve().parents[3] / "spark_jobs" / name)


def submit_environment() -> dict[str, str]:
    """What spark-submit needs whatever PATH its caller has: pip's spark-submit script
    looks for SPARK_HOME with whichever ``python3`` is first on PATH (outside the venv:
    one without pyspark, and the submit dies), and the Python workers must be this one."""
    from importlib.util import find_spec

    pyspark = find_spec("pyspark")  # located, not imported: importing it takes a second
    return {
        "SPARK_HOME": os.environ.get("SPARK_HOME") or str(Path(pyspark.origin).parent),
        "PYSPARK_PYTHON": sys.executable,
    }


# --- the lake through S3A (s3a://) -----------------------------------------------------
# hadoop-aws and the AWS SDK v2 modules S3A loads (devstack/jars/spark-s3.pom.xml; not the
# SDK's 686 MB bundle). Set by the deployment like the Kafka jars: a job that reads or
# writes the lake passes spark_jars(kafka_connector_jars(), s3a_jars()).
SPARK_S3_JARS_ENV = "FLOWGATE_SPARK_S3_JARS"
LAKE_CONN_ID = "lake_s3"
# The lake's keys travel in the driver's environment, never on spark-submit's command line
# (Airflow logs it, `ps` shows it). These are the SDK's own names.
S3A_KEY_ENV, S3A_SECRET_ENV = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"


def s3a_jars() -> str:
    return os.environ.get(SPARK_S3_JARS_ENV, "")


def spark_jars(*jar_lists: str) -> str:
    """Join comma-separated jar lists (or globs), skipping empty ones, for spark-submit."""
    return ",".join(j for j in jar_lists if j)


def s3a_conf(conn_id: str = LAKE_CONN_ID) -> dict[str, str]:
    """S3A's settings from an ``aws`` connection: nothing secret, fit for ``--conf``.

    With an ``endpoint_url`` in the connection's extra (MinIO in Docker, moto locally) the
    bucket goes in the path, not the host name, and TLS follows the URL's scheme. Without
    one (AWS itself) S3A's defaults stand."""
    from airflow.sdk import BaseHook

    extra = BaseHook.get_connection(conn_id).extra_dejson
    conf = {}
    if endpoint := extra.get("endpoint_url"):
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    if region := extra.get("region_name"):
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    return conf


def s3a_env(conn_id: str = LAKE_CONN_ID) -> dict[str, str]:
    """The connection's keys as the driver's environment (for StreamSpec.env / env_vars).
    Empty for a connection without keys: S3A then uses the instance's or pod's role."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.login:
        return {}
    return {S3A_KEY_ENV: conn.login, S3A_SECRET_ENV: conn.password or ""}


def s3a_credentials_conf() -> dict[str, str]:
    """In the driver: its environment's keys as Hadoop settings of the session.

    In local[*] S3A would find the variables itself; on a cluster the executors do not
    have the driver's environment, but they do get the session's Hadoop configuration with
    their tasks. Spark's UI and logs redact these keys (spark.redaction.regex)."""
    if S3A_KEY_ENV not in os.environ:
        return {}
    return {"spark.hadoop.fs.s3a.access.key": os.environ[S3A_KEY_ENV],
            "spark.hadoop.fs.s3a.secret.key": os.environ.get(S3A_SECRET_ENV, "")}

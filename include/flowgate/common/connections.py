"""Turn Airflow connection ids into what our libraries take (code holds ids, never secrets)."""

from __future__ import annotations


def postgres_dsn(conn_id: str) -> str:
    """A libpq conninfo string for a PostgreSQL connection, for psycopg 3 and COPY."""
    from airflow.sdk import BaseHook
    from psycopg.conninfo import make_conninfo

    conn = BaseHook.get_connection(conn_id)
    return make_conninfo(host=conn.host, port=conn.port or 5432, dbname=conn.schema,
                         user=conn.login, password=conn.password or "", connect_timeout=10)


def is_snowflake(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).conn_type == "snowflake"


def kafka_bootstrap(conn_id: str) -> str:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).extra_dejson["bootstrap.servers"]


def s3_client(conn_id: str = "lake_s3"):
    """A boto3 S3 client for an AWS connection (its endpoint and keys come with it)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def http_base_url(conn_id: str) -> str:
    """``scheme://host:port`` of an HTTP connection (our own services)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    scheme = conn.schema or "http"
    return f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")


def spark_master(conn_id: str) -> str:
    """The master URL of a Spark connection: ``local[*]`` or ``spark://host:port``."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if conn.host and conn.host.startswith(("local", "yarn", "k8s://", "spark://")):
        return conn.host
    return f"spark://{conn.host}:{conn.port or 7077}"

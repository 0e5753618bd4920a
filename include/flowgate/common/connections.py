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

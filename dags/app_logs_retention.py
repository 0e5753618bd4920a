"""
### Application logs — retention and compaction

Every hour, first **compact_closed_hours**: every hour of the lake that no batch writes to
any more is merged into a few large objects, its line count checked before any input is
deleted. Then **apply_retention**: sets the lake bucket's lifecycle rule (raw logs expire after the
lake TTL; MinIO enforces it in Docker), deletes lake objects past that TTL itself (the local
S3 API stores lifecycle rules but never expires anything), and deletes OpenSearch's daily
`app-logs-*` indices older than the index TTL.

Every TTL lives in `include/flowgate/logs/ttl.yaml`. The clock is the run's logical date,
so a backfill or a test moves it. Runbook: `docs/runbooks/app_logs_stream.md#retention`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS


@dag(
    dag_id="app_logs_retention",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["logs", "batch"],
    doc_md=__doc__,
)
def app_logs_retention():
    @task
    def compact_closed_hours(logical_date=None, data_interval_end=None):
        from flowgate.logs.housekeeping import compact_closed_hours

        return compact_closed_hours(data_interval_end or logical_date)

    @task
    def apply_retention(logical_date=None, data_interval_end=None):
        from flowgate.logs.housekeeping import apply_retention

        return apply_retention(data_interval_end or logical_date)

    compact_closed_hours() >> apply_retention()


app_logs_retention()

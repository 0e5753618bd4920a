"""
### Daily financial reporting (SOX)

Nightly, one run per business date (the run's data interval, never "now"):

1. **stage** — the date's postings, control totals and balances from core banking
   (`core_banking`), one consistent snapshot, copied into a staging schema of the mart.
2. **gates** — a Great Expectations checkpoint over the staged postings (Data Docs kept
   per run) and a reconciliation against the core's control totals, to the cent.
3. **publish** — only if both gates pass: the date's partition of every reporting table
   in `finance_mart` is replaced in one transaction, with its row in `audit.publish_log`
   (PostgreSQL: the staging database itself; a Snowflake connection: through the
   Snowflake provider).

A manual run may name its date with the `business_date` param ("Trigger DAG" form).
A failed gate publishes nothing, keeps its evidence (Data Docs, `reconciliation.csv`)
and alerts on-call. Re-runs and backfills replace their day. Runbook:
`docs/runbooks/finance_daily_reporting.md`. Code: `include/flowgate/finance/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS
from flowgate.common.gates import gate_failures_are_final

SOURCE_CONN_ID = "core_banking"
STAGING_CONN_ID = "finance_staging"  # PostgreSQL: stage, gates, and the transform
MART_CONN_ID = "finance_mart"  # PostgreSQL (the staging database) or Snowflake


def _run(context) -> "FinanceRun":  # noqa: F821 - imported lazily: DAG files parse fast
    from flowgate.common.connections import is_snowflake, postgres_dsn
    from flowgate.common.runs import business_date, run_type
    from flowgate.finance.pipeline import FinanceRun

    dag_run = context["dag_run"]
    return FinanceRun(
        business_date=business_date(context),
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=run_type(dag_run),
        source_dsn=postgres_dsn(SOURCE_CONN_ID),
        mart_dsn=postgres_dsn(STAGING_CONN_ID),
        snowflake_conn_id=MART_CONN_ID if is_snowflake(MART_CONN_ID) else None,
    )


@dag(
    dag_id="finance_daily_reporting",
    # Interval timetable: each run owns the business day [00:00, 24:00) UTC it follows.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1),  # the earliest business date analysts can backfill
    catchup=False,
    max_active_runs=4,  # backfill days run side by side; each has its own staging schema
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=20)},
    tags=["finance", "sox", "batch"],
    params={"business_date": Param(None, type=["null", "string"], format="date",
                                   description="Re-run one business date (YYYY-MM-DD) from a manual trigger; "
                                               "empty: the run's data interval.")},
    doc_md=__doc__,
)
def finance_daily_reporting():
    @task
    def stage(**context) -> dict:
        from flowgate.finance.pipeline import stage

        return stage(_run(context))

    @task
    def expectations_gate(staged: dict, **context) -> dict:
        from flowgate.finance.pipeline import validate_staged_postings

        with gate_failures_are_final():
            return validate_staged_postings(_run(context))

    @task
    def reconciliation_gate(staged: dict, **context) -> dict:
        from flowgate.finance.pipeline import reconcile_to_control_totals

        with gate_failures_are_final():
            return reconcile_to_control_totals(_run(context))

    @task
    def publish(staged: dict, expectations: dict, reconciliation: dict, **context) -> dict:
        from flowgate.finance.pipeline import drop_stage, publish

        run = _run(context)
        published = publish(run, staged, [expectations, reconciliation])
        drop_stage(run)
        return published

    staged = stage()
    publish(staged, expectations_gate(staged), reconciliation_gate(staged))


finance_daily_reporting()

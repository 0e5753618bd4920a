"""The nightly finance run, step by step: stage → gates → publish. Each step is one
Airflow task; each takes plain values (DSNs, the business date, the run's ids) so it
runs and is tested without a scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from flowgate.common.evidence import evidence_dir
from flowgate.common.gates import GateRejected
from flowgate.common.publish import (
    AUDIT_DDL,
    SNOWFLAKE_AUDIT_DDL,
    AuditContext,
    PartitionRows,
    PartitionTable,
    publish_partition,
    publish_partition_rows,
)
from flowgate.common.version import code_version
from flowgate.finance import expectations, extract, reconcile, staged_rows, transform

DATASET = "finance.daily_reporting"


class ReconciliationFailed(GateRejected):
    """The staged data does not add up to the core's control totals: nothing is published."""


@dataclass(frozen=True)
class FinanceRun:
    business_date: date
    dag_id: str
    run_id: str
    run_type: str
    source_dsn: str
    mart_dsn: str  # PostgreSQL: the day is staged and checked here, and published here too...
    snowflake_conn_id: str | None = None  # ...unless the mart is this Snowflake connection

    @property
    def stage_schema(self) -> str:
        return extract.staging_schema_name(self.business_date, self.run_id)

    @property
    def evidence(self) -> Path:
        return evidence_dir(DATASET, self.business_date, self.run_id)


def stage(run: FinanceRun) -> dict:
    staged = extract.stage_business_date(run.source_dsn, run.mart_dsn, run.business_date, run.stage_schema)
    return {"schema": staged.schema, "row_counts": staged.row_counts}


def validate_staged_postings(run: FinanceRun) -> dict:
    """The Great Expectations gate: returns its verdict, or raises with the failures.

    Every gate task process pays the import of Great Expectations (seconds of pure
    Python, GIL held). A child process loads the staged rows meanwhile, on the other
    core (``staged_rows``), so the two overlap instead of adding up.
    """
    from flowgate.common import gx_gate

    with staged_rows.loading_in_child(run.mart_dsn, run.stage_schema) as staged_postings:
        suite = expectations.staged_postings_suite()  # imports GX
        frame = staged_postings().to_pandas()
    result = gx_gate.run_gate(suite.name, frame, suite, run.evidence.parent, run.run_id,  # docs: the run's evidence
                              suite_parameters=expectations.staged_postings_parameters(run.business_date))
    # The suite file and its SHA-256 go into the audit row: which version of the control ran.
    verdict = result.verdict()
    result.raise_if_failed()
    return verdict


def reconcile_to_control_totals(run: FinanceRun) -> dict:
    """The reconciliation gate: returns its verdict, or raises with the report's path."""
    result = reconcile.reconcile(run.mart_dsn, run.stage_schema, run.business_date)
    report = reconcile.write_mismatch_report(result, run.evidence / "reconciliation.csv")
    verdict = {"gate": "reconciliation", "success": result.success, "summary": result.summary(),
               "report": str(report), "control_totals": result.control_totals()}
    if not result.success:
        raise ReconciliationFailed(f"{result.summary()}; report: {report}")
    return verdict


def ensure_mart(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(transform.MART_DDL)
        conn.execute(AUDIT_DDL)


def publish(run: FinanceRun, staged: dict, gate_results: list[dict]) -> dict:
    """Replace the business date in every reporting table and log it, atomically."""
    audit = _audit_context(run, staged, gate_results)
    if run.snowflake_conn_id:
        return publish_to_snowflake(run, audit)
    tables = [
        PartitionTable(t.name, t.key, sql.SQL(t.select).format(
            d=sql.Literal(run.business_date), stage=sql.Identifier(run.stage_schema)))
        for t in transform.REPORT_TABLES
    ]
    with psycopg.connect(run.mart_dsn) as conn:
        ensure_mart(conn)
        result = publish_partition(conn, "business_date", run.business_date, tables, audit)
    return {"rows_by_table": result.rows_by_table, "checksum": result.checksum, "audit_id": result.audit_id}


def _audit_context(run: FinanceRun, staged: dict, gate_results: list[dict]) -> AuditContext:
    reconciliation = next(g for g in gate_results if g["gate"] == "reconciliation")
    return AuditContext(
        dag_id=run.dag_id, run_id=run.run_id, run_type=run.run_type, dataset=DATASET,
        code_version=code_version(), input_counts=staged["row_counts"],
        control_totals=reconciliation["control_totals"],
        gate_results={g["gate"]: g for g in gate_results},
    )


def report_rows(run: FinanceRun) -> list[PartitionRows]:
    """The reporting tables' rows for the day, computed in the staging database."""
    tables = []
    with psycopg.connect(run.mart_dsn) as conn:
        for table in transform.REPORT_TABLES:
            query = sql.SQL(table.select + " order by {key}").format(
                d=sql.Literal(run.business_date), stage=sql.Identifier(run.stage_schema),
                key=sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(table.key))))
            cursor = conn.execute(query)
            tables.append(PartitionRows(table.name, table.columns, cursor.fetchall()))
    return tables


def publish_to_snowflake(run: FinanceRun, audit: AuditContext) -> dict:
    """Ship the day's report rows to a Snowflake mart, replacing the day atomically."""
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    tables = report_rows(run)
    conn = SnowflakeHook(snowflake_conn_id=run.snowflake_conn_id).get_conn()
    try:
        cursor = conn.cursor()
        for statement in (*transform.mart_ddl_statements(), *SNOWFLAKE_AUDIT_DDL):
            cursor.execute(statement)
        result = publish_partition_rows(conn, "business_date", run.business_date, tables, audit)
    finally:
        conn.close()
    return {"rows_by_table": result.rows_by_table, "checksum": result.checksum, "audit_id": result.audit_id}


def drop_stage(run: FinanceRun) -> None:
    extract.drop_staging(run.mart_dsn, run.stage_schema)

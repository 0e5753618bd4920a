"""The finance publish against Snowflake, through the Snowflake provider, on fakesnow.

Staging and gates run on the real local PostgreSQL; only the Snowflake account is
replaced by fakesnow (the one boundary that cannot run here).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest

from flowgate.common.connections import postgres_dsn
from flowgate.finance import pipeline
from flowgate.finance.generator import seed_finance

pytestmark = pytest.mark.integration

SNOWFLAKE_CONN_ID = "finance_mart_snowflake"


@pytest.fixture
def snowflake(fake_snowflake):
    return fake_snowflake(SNOWFLAKE_CONN_ID, "FINANCE_MART", "REPORTING")


def _gated_run(day: date, run_id: str, snowflake_conn_id: str | None) -> tuple[pipeline.FinanceRun, dict, list]:
    run = pipeline.FinanceRun(day, "finance_daily_reporting", run_id, "manual", postgres_dsn("core_banking"),
                              postgres_dsn("finance_staging"), snowflake_conn_id)
    staged = pipeline.stage(run)
    return run, staged, [pipeline.validate_staged_postings(run), pipeline.reconcile_to_control_totals(run)]


def test_publish_to_snowflake_matches_postgres_replaces_the_day_and_audits(running_stack, snowflake):
    day = date(2026, 8, 1)
    seed_finance(postgres_dsn("core_banking"), day, 3_000, seed=8)

    first = pipeline.publish(*_gated_run(day, "sf-run-1", SNOWFLAKE_CONN_ID))
    second = pipeline.publish(*_gated_run(day, "sf-run-2", SNOWFLAKE_CONN_ID))

    assert first["checksum"] == second["checksum"]
    conn = snowflake()
    cur = conn.cursor()
    cur.execute("select gl_code, currency, posting_count, debit_total, credit_total from reporting.daily_trial_balance "
                "where business_date = %s order by gl_code, currency", (day,))
    in_snowflake = [tuple(r) for r in cur.fetchall()]
    cur.execute("select count(*) from reporting.account_closing_balance where business_date = %s", (day,))
    assert cur.fetchone()[0] == first["rows_by_table"]["reporting.account_closing_balance"], "re-run must not append"
    cur.execute("select run_id, output_checksum from audit.publish_log where business_date = %s order by id", (day,))
    assert [tuple(r) for r in cur.fetchall()] == [("sf-run-1", first["checksum"]), ("sf-run-2", first["checksum"])]

    # The same day published to PostgreSQL gives the same figures.
    pipeline.publish(*_gated_run(day, "pg-run", None))
    with psycopg.connect(postgres_dsn("finance_mart")) as pg:
        in_postgres = pg.execute("select gl_code, currency, posting_count, debit_total, credit_total "
                                 "from reporting.daily_trial_balance where business_date = %s "
                                 "order by gl_code, currency", (day,)).fetchall()
    assert [(g, c, n, Decimal(d), Decimal(k)) for g, c, n, d, k in in_snowflake] == in_postgres


def test_a_failed_snowflake_publish_leaves_the_previous_day_untouched(running_stack, snowflake, monkeypatch):
    day = date(2026, 8, 2)
    seed_finance(postgres_dsn("core_banking"), day, 3_000, seed=9)
    published = pipeline.publish(*_gated_run(day, "sf-good", SNOWFLAKE_CONN_ID))

    real_rows = pipeline.report_rows

    def rows_with_a_bad_last_table(run):
        tables = real_rows(run)
        last = tables[-1]
        broken = [(*row[:-1], "not a number") for row in last.rows]
        return [*tables[:-1], pipeline.PartitionRows(last.name, last.columns, broken)]

    monkeypatch.setattr(pipeline, "report_rows", rows_with_a_bad_last_table)
    with pytest.raises(Exception):
        pipeline.publish(*_gated_run(day, "sf-bad", SNOWFLAKE_CONN_ID))

    cur = snowflake().cursor()
    cur.execute("select count(*) from reporting.daily_trial_balance where business_date = %s", (day,))
    assert cur.fetchone()[0] == published["rows_by_table"]["reporting.daily_trial_balance"]
    cur.execute("select run_id from audit.publish_log where business_date = %s", (day,))
    assert [r[0] for r in cur.fetchall()] == ["sf-good"]

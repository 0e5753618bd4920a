"""The partner publish against Snowflake, through the Snowflake provider, on fakesnow.

The ledger, the staging table and the GX gate run on the real local PostgreSQL
(``partner_staging``); only the Snowflake account is replaced by fakesnow (the one
boundary that cannot run here). Files come from the real SFTP server.
"""

from __future__ import annotations


import psycopg
import pytest

from flowgate.common.connections import postgres_dsn
from flowgate.partner import pipeline
from flowgate.partner.contract import IsoWeek, load_contract
from flowgate.partner.deliver import deliver
from flowgate.partner.files import write_partner_file

pytestmark = pytest.mark.integration

SNOWFLAKE_CONN_ID = "warehouse_snowflake"
ACME = load_contract("acme")


@pytest.fixture
def snowflake(fake_snowflake):
    return fake_snowflake(SNOWFLAKE_CONN_ID, "WAREHOUSE", "PUBLIC")


def _week_through_the_gate(running_stack, tmp_path, week: IsoWeek, run_id: str, snowflake_conn_id: str | None):
    made = write_partner_file(ACME, week, tmp_path / f"{run_id}.csv.gz", rows=800, seed=week.week)
    deliver(running_stack, ACME, week, made.path, replace=True)
    run = pipeline.PartnerRun(ACME, week, "partner_weekly_ingest__acme", run_id, "manual",
                              postgres_dsn("partner_staging"), snowflake_conn_id=snowflake_conn_id,
                              reprocess_by="test", reprocess_reason="snowflake path")
    staged = pipeline.receive_and_stage(run)
    return run, staged, pipeline.validate_stage(run, staged)


def test_a_week_published_to_snowflake_replaces_the_week_audits_and_marks_the_ledger(
        running_stack, snowflake, tmp_path):
    week = IsoWeek(2025, 30)

    first = pipeline.publish(*_week_through_the_gate(running_stack, tmp_path, week, "sf-partner-1", SNOWFLAKE_CONN_ID))
    run, staged, gate = _week_through_the_gate(running_stack, tmp_path, week, "sf-partner-2", SNOWFLAKE_CONN_ID)
    second = pipeline.publish(run, staged, gate)

    assert first["rows_by_table"] == second["rows_by_table"] == {ACME.table: 800}
    cur = snowflake().cursor()
    cur.execute(f"select count(*), count(distinct run_id), min(run_id) from {ACME.table} where delivery_week = %s",
                (week.monday,))
    assert tuple(cur.fetchone()) == (800, 1, "sf-partner-2"), "the week replaced, not appended"
    cur.execute("select run_id, dataset from audit.publish_log where business_date = %s order by id", (week.monday,))
    assert [tuple(r) for r in cur.fetchall()] == [("sf-partner-1", "partner.acme"), ("sf-partner-2", "partner.acme")]
    cur.execute(f"select * from {ACME.table} limit 1")
    columns = [d[0].lower() for d in cur.description]
    assert "contact_phone" not in columns and "contact_email_token" in columns
    with psycopg.connect(postgres_dsn("partner_staging")) as conn:
        status = conn.execute("select status, rows_loaded from partner.file_ledger where id = %s",
                              (staged["ledger_id"],)).fetchone()
        stage_left = conn.execute("select to_regclass(%s)", (f"partner_stage.{staged['stage_table']}",)).fetchone()[0]
    assert status == ("loaded", 800) and stage_left is None

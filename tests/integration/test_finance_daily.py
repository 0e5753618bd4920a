"""finance_daily_reporting against the real stack: publish, gates, re-runs, retries."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from flowgate.common.connections import postgres_dsn
from flowgate.common.evidence import evidence_dir
from flowgate.devstack.postgres import superuser_dsn
from flowgate.finance.extract import EXTRACT_APPLICATION
from flowgate.finance.generator import seed_finance, tamper_control_total

pytestmark = pytest.mark.integration

DAG_ID = "finance_daily_reporting"
POSTINGS = 5_000  # small days keep the suite fast; bench/finance_daily.py runs 1M
REPORT_TABLES = ("reporting.daily_trial_balance", "reporting.account_closing_balance",
                 "reporting.daily_product_summary")


@pytest.fixture(scope="module")
def source_dsn(running_stack) -> str:
    return postgres_dsn("core_banking")


@pytest.fixture(scope="module")
def mart_dsn(running_stack) -> str:
    return postgres_dsn("finance_mart")


@pytest.fixture(scope="module")
def finance_dag(running_stack, scheduler_paused):
    from airflow.dag_processing.dagbag import DagBag

    with scheduler_paused(DAG_ID):
        yield DagBag(dag_folder=str(running_stack.root / "dags" / f"{DAG_ID}.py")).get_dag(DAG_ID)


def run_business_date(dag, business_date: date):
    """dag.test() for one business date: the run's data interval is the day itself."""
    logical = datetime.combine(business_date + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    run = dag.test(logical_date=logical)
    assert run.data_interval_start.date() == business_date
    assert {ti.task_id for ti in run.get_task_instances()} == {t.task_id for t in dag.tasks}
    return run


def audit_rows(mart_dsn: str, business_date: date, *runs) -> list[dict]:
    """The audit rows these runs wrote (a developer's stack may hold older ones too)."""
    with psycopg.connect(mart_dsn) as conn:
        conn.row_factory = psycopg.rows.dict_row
        try:
            return conn.execute("select * from audit.publish_log where dataset = 'finance.daily_reporting' "
                                "and business_date = %s and run_id = any(%s) order by id",
                                (business_date, [r.run_id for r in runs])).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def partition_rows(mart_dsn: str, business_date: date) -> dict[str, int]:
    counts = {}
    with psycopg.connect(mart_dsn) as conn:
        for table in REPORT_TABLES:
            try:
                counts[table] = conn.execute(f"select count(*) from {table} where business_date = %s",
                                             (business_date,)).fetchone()[0]
            except psycopg.errors.UndefinedTable:
                conn.rollback()
                counts[table] = 0
    return counts


def test_a_day_is_published_reconciled_to_the_cent_with_its_audit_row(finance_dag, source_dsn, mart_dsn):
    day = date(2026, 10, 1)
    seeded = seed_finance(source_dsn, day, POSTINGS, seed=1)

    run = run_business_date(finance_dag, day)

    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {t.task_id: "success" for t in finance_dag.tasks}
    assert run.state == "success"
    with psycopg.connect(mart_dsn) as conn:
        debit, credit, count = conn.execute(
            "select sum(debit_total), sum(credit_total), sum(posting_count) "
            "from reporting.daily_trial_balance where business_date = %s", (day,)).fetchone()
    assert debit == credit == seeded.debit_total
    assert count == seeded.control_posting_count
    (audit,) = audit_rows(mart_dsn, day, run)
    assert audit["run_id"] == run.run_id and audit["dag_id"] == DAG_ID and audit["run_type"] == "manual"
    assert audit["input_counts"]["postings"] == POSTINGS
    assert Decimal(audit["control_totals"]["debit_total"]) == seeded.debit_total
    assert audit["output_rows"] == sum(partition_rows(mart_dsn, day).values())
    gates = audit["gate_results"]
    assert gates["expectations"]["success"] and gates["reconciliation"]["success"]
    assert Path(gates["expectations"]["data_docs"]).is_file(), "Data Docs of the run are kept"
    assert audit["code_version"] != "unknown"


def test_three_reruns_of_a_day_give_identical_tables_and_three_audit_rows(finance_dag, source_dsn, mart_dsn):
    day = date(2026, 10, 2)
    seed_finance(source_dsn, day, POSTINGS, seed=2)

    runs = [run_business_date(finance_dag, day) for _ in range(3)]

    assert [r.state for r in runs] == ["success"] * 3
    rows = audit_rows(mart_dsn, day, *runs)
    assert len(rows) == 3
    assert len({r["output_checksum"] for r in rows}) == 1, "re-runs must publish identical tables"
    assert len({r["run_id"] for r in rows}) == 3
    assert sum(partition_rows(mart_dsn, day).values()) == rows[0]["output_rows"], "the day replaced, not appended"


def test_a_reconciliation_mismatch_publishes_nothing_keeps_evidence_and_alerts(
        finance_dag, source_dsn, mart_dsn, webhook_receiver):
    _, alerts_file = webhook_receiver
    day = date(2026, 10, 3)
    seed_finance(source_dsn, day, POSTINGS, seed=3)
    tamper_control_total(source_dsn, day, "2000-DEPOSITS", "EUR", Decimal("0.01"), side="credit")

    before = partition_rows(mart_dsn, day)
    run = run_business_date(finance_dag, day)

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert states["reconciliation_gate"] == "failed" and states["publish"] == "upstream_failed"
    assert states["expectations_gate"] == "success"  # the data itself is clean; the totals are not
    assert audit_rows(mart_dsn, day, run) == []
    assert partition_rows(mart_dsn, day) == before, "a failed gate must publish nothing"

    evidence = evidence_dir("finance.daily_reporting", day, run.run_id)
    report = (evidence / "reconciliation.csv").read_text().splitlines()
    assert len(report) == 2 and report[1].startswith("2000-DEPOSITS,EUR,")
    assert report[1].endswith(",0,0.00,-0.01"), report[1]  # counts and debits agree; credit off by a cent
    assert (evidence / "index.html").is_file(), "the GX Data Docs of the failed run are kept too"

    alerts = [json.loads(line)["payload"]["text"] for line in alerts_file.read_text().splitlines()]
    assert len(alerts) == 1, "one alert, and no retries of a failed gate"
    assert DAG_ID in alerts[0] and "reconciliation_gate" in alerts[0] and str(day) in alerts[0]
    assert "2000-DEPOSITS/EUR" in alerts[0]


def test_a_dropped_source_connection_is_retried_and_the_run_succeeds(finance_dag, source_dsn, mart_dsn, running_stack):
    day = date(2026, 10, 4)
    seed_finance(source_dsn, day, POSTINGS, seed=4)
    killed: list[int] = []

    def drop_the_extract_connection_once():
        # Hold a lock the extract needs, wait until it queues on it, then kill its backend.
        dsn = superuser_dsn(running_stack, "core_banking")
        with psycopg.connect(dsn) as locker, psycopg.connect(dsn, autocommit=True) as watcher:
            locker.execute("lock table core.control_totals in access exclusive mode")
            deadline = time.monotonic() + 120
            while not killed and time.monotonic() < deadline:
                # autocommit: each poll reads fresh activity (a transaction would see one snapshot)
                row = watcher.execute("select pid from pg_stat_activity where application_name = %s "
                                      "and wait_event_type = 'Lock'", (EXTRACT_APPLICATION,)).fetchone()
                if row:
                    watcher.execute("select pg_terminate_backend(%s)", row)
                    killed.append(row[0])
                time.sleep(0.05)
            locker.rollback()

    killer = threading.Thread(target=drop_the_extract_connection_once, daemon=True)
    killer.start()
    run = run_business_date(finance_dag, day)
    killer.join(10)

    assert killed, "the extract's connection was never dropped: the test proved nothing"
    stage = next(ti for ti in run.get_task_instances() if ti.task_id == "stage")
    assert run.state == "success"
    assert stage.try_number == 2, "stage should have failed once and succeeded on its retry"
    assert len(audit_rows(mart_dsn, day, run)) == 1


def test_a_seven_day_backfill_through_the_api_publishes_seven_reconciled_days(airflow_api, source_dsn, mart_dsn):
    days = [date(2026, 9, 1) + timedelta(days=n) for n in range(7)]
    for n, day in enumerate(days):
        seed_finance(source_dsn, day, POSTINGS, seed=100 + n)
    was_paused = airflow_api.wait_for_dag(DAG_ID)["is_paused"]
    airflow_api.unpause(DAG_ID)  # a paused DAG's backfill runs only queue
    try:
        backfill = airflow_api.backfill(DAG_ID, f"{days[0]}T00:00:00Z", f"{days[-1]}T00:00:00Z")
        runs = airflow_api.wait_for_backfill(backfill, timeout=900)
    finally:
        if was_paused:
            airflow_api.pause(DAG_ID)

    assert [r["data_interval_start"][:10] for r in runs] == [str(d) for d in days]
    assert {r["state"] for r in runs} == {"success"}, [(r["run_id"], r["state"]) for r in runs]
    for day, run in zip(days, runs):
        with psycopg.connect(mart_dsn) as conn:
            # Backfill run ids repeat across backfills of the same dates: count this one's publishes.
            audit = conn.execute(
                "select run_type, gate_results -> 'reconciliation' ->> 'success' from audit.publish_log "
                "where business_date = %s and run_id = %s and published_at >= %s",
                (day, run["dag_run_id"], backfill["created_at"])).fetchall()
        assert audit == [("backfill", "true")], (day, audit)
        assert partition_rows(mart_dsn, day)["reporting.daily_trial_balance"] > 0


def test_an_unbalanced_transaction_fails_the_expectations_gate_and_publishes_nothing(
        finance_dag, source_dsn, mart_dsn):
    day = date(2026, 10, 5)
    seed_finance(source_dsn, day, POSTINGS, seed=5)
    # One leg of one booked transaction gains a cent, and the core's totals follow it:
    # reconciliation alone would pass; only the balance check can catch it.
    with psycopg.connect(source_dsn) as conn:
        posting_id, gl_code, currency, side = conn.execute(
            "select posting_id, gl_code, currency, side from core.postings "
            "where value_date = %s and status = 'booked' order by posting_id limit 1", (day,)).fetchone()
        conn.execute("update core.postings set amount = amount + 0.01 where posting_id = %s", (posting_id,))
    tamper_control_total(source_dsn, day, gl_code, currency, Decimal("0.01"), side=side)
    before = partition_rows(mart_dsn, day)

    run = run_business_date(finance_dag, day)

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["expectations_gate"] == "failed" and states["reconciliation_gate"] == "success"
    assert states["publish"] == "upstream_failed"
    assert partition_rows(mart_dsn, day) == before and audit_rows(mart_dsn, day, run) == []
    verdict = json.loads((evidence_dir("finance.daily_reporting", day, run.run_id) / "gate_result.json").read_text())
    (failure,) = verdict["failed"]
    assert failure["column"] == "transaction_imbalance_cents"


def test_a_manual_run_can_name_its_business_date(finance_dag, source_dsn, mart_dsn):
    day = date(2026, 10, 6)
    seed_finance(source_dsn, day, POSTINGS, seed=6)

    run = finance_dag.test(run_conf={"business_date": str(day)})

    assert run.state == "success"
    (audit,) = audit_rows(mart_dsn, day, run)
    assert audit["run_type"] == "manual"

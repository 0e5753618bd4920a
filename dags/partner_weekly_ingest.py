"""
### Partner data (NDA) — weekly SFTP ingest, one DAG per partner contract

`partner_weekly_ingest__<partner>`, one per contract in `expectations/partners/`. Each
run owns one ISO week (its data interval, or the `week` param of a manual run):

1. **wait_for_file** — polls the partner's folder on `partner_sftp` (host key pinned) in
   reschedule mode for the week's file; a `.part` upload never matches. SFTP down →
   retries with backoff, then an alert. No file by the contract's deadline → a
   "file late" alert naming the partner, the file and the week.
2. **receive** — downloads the file, checks the ledger (`partner.file_ledger`): the same
   name and SHA-256 again is skipped; the same name with new content is quarantined
   (`redelivery_conflict`). Then decrypts and verifies PGP, checks the header and every
   value against the contract, and scrubs in a stream (tokenize, encrypt, drop) into a
   staging table. Anything off quarantines the file whole.
3. **validate** — the partner's Great Expectations suite from `expectations/`, in the
   database, with no values copied into results. Fails → quarantine.
4. **publish** — the week replaces its partition of `partner_<partner>.<dataset>` in the
   `warehouse`, with provenance columns, the audit row and the ledger's `loaded`, in one
   transaction.

A quarantined file is kept sealed in the lake with a report of checks, counts and row
numbers (never values); the alert links it. Reprocess a known file on purpose:
`{"week": "2026-W47", "reprocess": true, "reprocess_reason": "..."}`. Runbook:
`docs/runbooks/partner_weekly_ingest.md`. Code: `include/flowgate/partner/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from airflow.providers.sftp.sensors.sftp import SFTPSensor
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS
from flowgate.common.gates import gate_failures_are_final
from flowgate.partner.contract import load_contract, partners
from flowgate.partner.runs import alert_file_late_or_failed, week_of

SFTP_CONN_ID = "partner_sftp"
STAGING_CONN_ID = "partner_staging"  # PostgreSQL: ledger, staging, gate
WAREHOUSE_CONN_ID = "warehouse"  # the BI mart: PostgreSQL (the staging database) or Snowflake


def _run(context, partner: str) -> "PartnerRun":  # noqa: F821 - imported lazily: DAG files parse fast
    from flowgate.common.connections import is_snowflake, postgres_dsn
    from flowgate.common.runs import run_type
    from flowgate.partner.pipeline import PartnerRun
    from flowgate.partner.runs import reprocess_request

    dag_run = context["dag_run"]
    who, why = reprocess_request(context["params"], dag_run)
    return PartnerRun(
        contract=load_contract(partner),
        week=week_of(context["params"], context.get("data_interval_start")),
        dag_id=dag_run.dag_id, run_id=dag_run.run_id, run_type=run_type(dag_run),
        staging_dsn=postgres_dsn(STAGING_CONN_ID),
        snowflake_conn_id=WAREHOUSE_CONN_ID if is_snowflake(WAREHOUSE_CONN_ID) else None,
        sftp_conn_id=SFTP_CONN_ID, reprocess_by=who, reprocess_reason=why,
    )


def partner_dag(partner: str):
    contract = load_contract(partner)

    @dag(
        dag_id=f"partner_weekly_ingest__{partner}",
        # Interval timetable: each run owns the ISO week [Mon, Mon) it follows.
        schedule=CronDataIntervalTimetable("0 6 * * 1", timezone="UTC"),
        start_date=datetime(2026, 1, 5),  # the earliest week analysts can backfill
        catchup=False,
        max_active_runs=2,  # backfilled weeks side by side; the ledger serialises each file
        default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=30)},
        tags=["partner", "nda", "batch"],
        params={
            "week": Param(None, type=["null", "string"], pattern=r"^\d{4}-W\d{2}$",
                          description="ISO week to (re)load, e.g. 2026-W47; empty: the run's data interval."),
            "reprocess": Param(False, type="boolean",
                               description="Process the week's file again although the ledger knows it."),
            "reprocess_reason": Param("", type="string", description="Why (recorded in the ledger)."),
        },
        user_defined_macros={"week_of": week_of},
        doc_md=f"{__doc__}\n\n**This DAG:** partner `{partner}` — {contract.description} "
               f"File `{contract.delivery.file_name}` in `{contract.delivery.folder}`, published to "
               f"`{contract.table}`.",
    )
    def ingest():
        wait_for_file = SFTPSensor(
            task_id="wait_for_file",
            sftp_conn_id=SFTP_CONN_ID,
            path=contract.delivery.folder,
            # The exact final name: a `<name>.part` still being uploaded never matches.
            file_pattern=contract.delivery.file_name.replace(
                "{week}", "{{ week_of(params, data_interval_start).compact }}"),
            # Reschedule, not deferrable: the deferrable sensor returns no file list and
            # ends its wait on the first connection error (DESIGN.md §6).
            mode="reschedule",
            deferrable=False,
            poke_interval=contract.delivery.poke_minutes * 60,
            timeout=contract.delivery.deadline_hours * 3600,
            on_failure_callback=partial(alert_file_late_or_failed, partner=partner),
        )

        @task
        def receive(**context) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from flowgate.partner.pipeline import receive_and_stage

            with gate_failures_are_final():
                staged = receive_and_stage(_run(context, partner))
            if staged["decision"] == "skipped_duplicate":
                raise AirflowSkipException(f"{staged['file_name']} (sha256 {staged['sha256'][:12]}…) is already "
                                           f"in the ledger: skipped (ledger row {staged['ledger_id']})")
            return staged

        @task
        def validate(staged: dict, **context) -> dict:
            from flowgate.partner.pipeline import validate_stage

            with gate_failures_are_final():
                return validate_stage(_run(context, partner), staged)

        @task
        def publish(staged: dict, gate: dict, **context) -> dict:
            from flowgate.partner.pipeline import publish

            return publish(_run(context, partner), staged, gate)

        staged = receive()
        wait_for_file >> staged
        publish(staged, validate(staged))

    return ingest()


for _partner in partners():
    partner_dag(_partner)

"""The partner flow's part of ``make demo``: two partners deliver last week's file, the
scheduler runs their DAGs, and then one partner sends a file with a column the NDA does
not allow — it ends in quarantine, with its report.

Everything is the platform's own: files generated and put on the real SFTP server as a
partner would (``.part``, rename), the runs triggered through Airflow's REST API as from
the "Trigger DAG" form, the results read back from the warehouse and the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

from flowgate.common.connections import postgres_dsn
from flowgate.common.evidence import evidence_dir
from flowgate.partner.contract import IsoWeek, load_contract, partners

Echo = Callable[[str], None]
DEMO_ROWS = 20_000
BAD_FILE = "extra_ssn_column"  # a partner adds an `ssn` column without notice


def dag_id(partner: str) -> str:
    return f"partner_weekly_ingest__{partner}"


def deliver_week(cfg, partner: str, week: IsoWeek, workdir: Path, corruption: str | None = None, seed: int = 1):
    from flowgate.devstack.partner_keys import partner_signing_material
    from flowgate.partner.deliver import deliver
    from flowgate.partner.files import Signing, write_partner_file

    contract = load_contract(partner)
    signing = None
    if contract.format.pgp:
        private, public = partner_signing_material(cfg, partner)
        signing = Signing(recipient_public_key=public, signer_private_key=private)
    made = write_partner_file(contract, week, workdir / f"{corruption or 'good'}-{contract.file_name(week)}",
                              rows=DEMO_ROWS, seed=seed, corruption=corruption, signing=signing)
    deliver(cfg, contract, week, made.path, replace=True)
    return made


def ledger_entry(partner: str, run_id: str) -> dict | None:
    """What this run's ledger row says (unpausing a DAG may start a scheduled run beside it)."""
    with psycopg.connect(postgres_dsn("partner_staging")) as conn:
        return conn.cursor(row_factory=psycopg.rows.dict_row).execute(
            "select * from partner.file_ledger where partner = %s and run_id = %s order by id desc limit 1",
            (partner, run_id)).fetchone()


def run(api, cfg, echo: Echo) -> None:
    import logging

    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one line per SFTP packet otherwise
    week = IsoWeek.of(datetime.now(UTC)).previous()  # the last complete week
    bad_week = week.previous()
    with TemporaryDirectory(prefix="flowgate-demo-partner-") as tmp:
        echo(f"\nPartners deliver their files for {week} ({DEMO_ROWS:,} rows each) to the SFTP server ...")
        for partner in partners():
            made = deliver_week(cfg, partner, week, Path(tmp), seed=week.week)
            echo(f"  {partner}: {made.path.name.split('-', 1)[1]}, {made.size:,} bytes")
        for partner in partners():
            entry = ledger_entry(partner, _trigger(api, partner, week, echo, reprocess=True))
            contract = load_contract(partner)
            with psycopg.connect(postgres_dsn("warehouse")) as conn:
                count = conn.execute(f"select count(*) from {contract.table} where delivery_week = %s",
                                     (week.monday,)).fetchone()[0]
            echo(f"  ledger: {entry['status']} ({entry['rows_received']:,} received, {entry['rows_loaded']:,} loaded); "
                 f"{contract.table} holds {count:,} rows for {week} — columns: "
                 + ", ".join(c.output_name for c in contract.loaded_columns))

        echo(f"\nacme sends {bad_week} with an extra `ssn` column the NDA does not allow ...")
        deliver_week(cfg, "acme", bad_week, Path(tmp), corruption=BAD_FILE, seed=bad_week.week)
        run_id = _trigger(api, "acme", bad_week, echo, reprocess=True)
        entry = ledger_entry("acme", run_id)
        echo(f"  ledger: {entry['status']}, reason {entry['reason']}; nothing published")
        report_file = evidence_dir("partner.acme", bad_week.monday, run_id) / "quarantine_report.json"
        report = json.loads(report_file.read_text())
        echo(f"  report ({entry['report_uri']}, and {report_file}):")
        echo(f"    {report['reason']}: {report['detail']}")
        echo("  The alert went to on-call (the alert sink: .flowgate/logs/alerts.jsonl).")


def _trigger(api, partner: str, week: IsoWeek, echo: Echo, reprocess: bool) -> str:
    """Trigger the partner's DAG for ``week`` as an analyst would. ``reprocess``: a demo run
    again on the same stack processes the file again (the ledger records that it was the demo)."""
    dag = dag_id(partner)
    api.wait_for_dag(dag)
    api.unpause(dag)
    conf = {"week": str(week)}
    if reprocess:
        conf.update(reprocess=True, reprocess_reason="make demo")
    run_id = api.trigger(dag, conf=conf)
    echo(f"Running {dag} for {week} ({run_id}) ...")
    result = api.wait_for_run(dag, run_id, timeout=900)
    echo(f"  {result['state']}: " + ", ".join(f"{t} {s}" for t, s in sorted(api.task_states(dag, run_id).items())))
    return run_id

"""partner_weekly_ingest__<partner> against the real stack: SFTP, PostgreSQL, S3, Airflow.

Every file is generated at test time and put on the real SFTP server as a partner would
(``.part``, then a rename). Each bad file of the corpus must end quarantined whole, with
its ledger status and report, and publish nothing; good files load row for row.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from flowgate.common.connections import postgres_dsn
from flowgate.common.evidence import evidence_dir
from flowgate.partner import crypto
from flowgate.partner.contract import IsoWeek, load_contract
from flowgate.partner.files import LEGAL_CORRUPTIONS, applies, planted_pii, write_partner_file

pytestmark = pytest.mark.integration

ROWS = 1_500  # small weeks keep the suite fast; bench/partner_ingest.py runs 1M
ACME, GLOBEX = load_contract("acme"), load_contract("globex")
PLANTED: set[str] = set()  # every pii/restricted value any test delivered: none may leak


def dag_id(contract) -> str:
    return f"partner_weekly_ingest__{contract.partner}"


@pytest.fixture(scope="module")
def warehouse(running_stack) -> str:
    return postgres_dsn("partner_staging")


@pytest.fixture(scope="module")
def dags(running_stack, scheduler_paused):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(running_stack.root / "dags" / "partner_weekly_ingest.py"))
    assert bag.import_errors == {}
    with scheduler_paused(dag_id(ACME)), scheduler_paused(dag_id(GLOBEX)):
        yield {c.partner: bag.get_dag(dag_id(c)) for c in (ACME, GLOBEX)}


@pytest.fixture(scope="module")
def deliver(running_stack, tmp_path_factory):
    """deliver(contract, week, rows=, seed=, corruption=, replace=) → the PartnerFile on the SFTP server."""
    from flowgate.devstack.partner_keys import partner_signing_material
    from flowgate.partner.deliver import deliver as put_on_sftp
    from flowgate.partner.files import Signing

    folder = tmp_path_factory.mktemp("partner-files")

    def _deliver(contract, week: IsoWeek, rows: int = ROWS, seed: int = 0, corruption: str | None = None,
                 replace: bool = True, week_of_content: IsoWeek | None = None, fresh: bool = True):
        """Put the file on the SFTP server. ``fresh``: first forget what earlier sessions of a
        developer's stack loaded for this partner and week (ledger rows, the mart's week)."""
        if fresh:
            forget_week(postgres_dsn("partner_staging"), contract, week)
        signing = None
        if contract.format.pgp:
            signer_private, recipient_public = partner_signing_material(running_stack, contract.partner)
            signing = Signing(recipient_public_key=recipient_public, signer_private_key=signer_private)
        local = folder / f"{corruption or 'good'}-{seed}-{contract.file_name(week)}"
        content = week_of_content or week
        made = write_partner_file(contract, content, local, rows=rows, seed=seed, corruption=corruption,
                                  signing=signing)
        PLANTED.update(planted_pii(contract, content, rows, seed, corruption))
        put_on_sftp(running_stack, contract, week, made.path, replace=replace)
        return made

    return _deliver


def forget_week(dsn: str, contract, week: IsoWeek) -> None:
    with psycopg.connect(dsn) as conn:
        for statement in ("delete from partner.file_ledger where partner = %s and file_name = %s",
                          f"delete from {contract.table} where delivery_week = %s"):
            try:
                with conn.transaction():
                    conn.execute(statement, (contract.partner, contract.file_name(week))
                                 if "ledger" in statement else (week.monday,))
            except psycopg.errors.UndefinedTable:
                pass


def run_week(dag, week: IsoWeek, **conf):
    run = dag.test(run_conf={"week": str(week), **conf})
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def ledger_rows(dsn: str, partner: str, file_name: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute("select * from partner.file_ledger where partner = %s and file_name = %s order by id",
                           (partner, file_name)).fetchall()


def mart_rows(dsn: str, contract, week: IsoWeek) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        try:
            return cur.execute(f"select * from {contract.table} where delivery_week = %s order by source_row",
                               (week.monday,)).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def audit_rows(dsn: str, contract, run) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute("select * from audit.publish_log where dataset = %s and run_id = %s",
                           (f"partner.{contract.partner}", run.run_id)).fetchall()


def keys_of(contract) -> crypto.PartnerKeys:
    return crypto.load_keys(contract.partner, contract.keys_conn_id)


# --------------------------------------------------------------------------- good weeks


def test_a_week_loads_scrubbed_with_provenance_audit_and_ledger(dags, deliver, warehouse):
    week = IsoWeek(2026, 30)
    made = deliver(ACME, week, seed=1)

    run, states = run_week(dags["acme"], week)

    assert run.state == "success", states
    rows = mart_rows(warehouse, ACME, week)
    assert len(rows) == made.rows == ROWS, "rows received = rows loaded"
    first = rows[0]
    assert "contact_phone" not in first and "contact_email" not in first, "dropped and raw pii columns never land"
    assert (first["source_file"], first["source_row"], first["run_id"]) == (ACME.file_name(week), 1, run.run_id)
    with gzip.open(made.path, "rt") as f:
        f.readline()
        email = next(f).rstrip("\n").split(",")[ACME.header.index("contact_email")]
    assert first["contact_email_token"] == crypto.tokenize_values(keys_of(ACME).hmac_key, [email])[0]
    (audit,) = audit_rows(warehouse, ACME, run)
    gate = audit["gate_results"]["expectations"]
    suite_path = Path(__file__).resolve().parents[2] / "expectations" / f"{ACME.suite}.json"
    assert gate["success"] and gate["suite_sha256"] == hashlib.sha256(suite_path.read_bytes()).hexdigest()
    assert audit["control_totals"]["contract_sha256"] == ACME.sha256
    assert audit["input_counts"]["sha256"] == made.sha256 and audit["output_rows"] == ROWS
    (entry,) = ledger_rows(warehouse, "acme", ACME.file_name(week))
    assert (entry["status"], entry["sha256"], entry["rows_received"], entry["rows_loaded"]) == (
        "loaded", made.sha256, ROWS, ROWS)
    assert Path(gate["data_docs"]).is_file()


def test_a_pgp_week_is_decrypted_verified_and_its_restricted_field_encrypted(dags, deliver, warehouse):
    week = IsoWeek(2026, 31)
    deliver(GLOBEX, week, seed=2)

    run, states = run_week(dags["globex"], week)

    assert run.state == "success", states
    rows = mart_rows(warehouse, GLOBEX, week)
    assert len(rows) == ROWS
    assert "holder_name" not in rows[0] and "date_of_birth" not in rows[0]
    dob = crypto.decrypt_value(keys_of(GLOBEX).aes_key, "globex", "date_of_birth", rows[0]["date_of_birth_encrypted"])
    assert dob in PLANTED, "the ciphertext decrypts, with the key, to the partner's value"
    assert len({r["customer_ref_token"] for r in rows}) > 1


def test_the_same_file_again_is_skipped_and_changed_content_is_a_redelivery_conflict(
        dags, deliver, warehouse, webhook_receiver):
    _, alerts_file = webhook_receiver
    week = IsoWeek(2026, 32)
    deliver(ACME, week, seed=3)
    first, _ = run_week(dags["acme"], week)
    loaded = mart_rows(warehouse, ACME, week)

    again, states = run_week(dags["acme"], week)
    assert again.state == "success" and states["receive"] == "skipped" and states["publish"] == "skipped"

    deliver(ACME, week, seed=4, corruption="changed_content", fresh=False)
    conflict, states = run_week(dags["acme"], week)

    assert states["receive"] == "failed" and states["publish"] == "upstream_failed"
    assert mart_rows(warehouse, ACME, week) == loaded, "the loaded week is never overwritten by a redelivery"
    statuses = [(r["status"], r["reason"] or "") for r in ledger_rows(warehouse, "acme", ACME.file_name(week))]
    assert [s for s, _ in statuses] == ["loaded", "skipped_duplicate", "quarantined"]
    assert statuses[2][1] == "redelivery_conflict"
    (alert,) = [json.loads(line)["payload"]["text"] for line in alerts_file.read_text().splitlines()]
    assert "acme" in alert and ACME.file_name(week) in alert and "report" in alert


def test_an_operator_reprocesses_a_file_on_purpose_and_the_ledger_says_who_and_why(dags, deliver, warehouse):
    week = IsoWeek(2026, 33)
    deliver(ACME, week, seed=5)
    run_week(dags["acme"], week)
    deliver(ACME, week, seed=6, corruption="changed_content", fresh=False)

    run, states = run_week(dags["acme"], week, reprocess=True, reprocess_reason="partner re-sent fixed totals")

    assert run.state == "success", states
    last = ledger_rows(warehouse, "acme", ACME.file_name(week))[-1]
    assert last["status"] == "loaded" and last["request_reason"] == "partner re-sent fixed totals"
    assert last["requested_by"]
    assert {r["run_id"] for r in mart_rows(warehouse, ACME, week)} == {run.run_id}, "the week replaced, not appended"


# --------------------------------------------------------------------------- the bad corpus

EXPECTED_REASONS = {
    "extra_ssn_column": "unexpected_column",
    "renamed_header": "unexpected_column",
    "reordered_columns": "reordered_columns",
    "duplicate_header": "duplicate_column",
    "utf8_bom": "utf8_bom",
    "cp1252_bytes": "encoding",
    "semicolon_delimiter": "wrong_delimiter",
    "truncated_gzip": "corrupt_compression",
    "empty_file": "empty_file",
    "header_only": "no_rows",
    "huge_field": "invalid_too_long",
    "trailer_mismatch": "trailer_mismatch",
    "bad_signature": "bad_signature",
}
CORPUS = [(c, name) for name in EXPECTED_REASONS for c in (ACME, GLOBEX) if applies(name, c)]


@pytest.mark.parametrize("contract, corruption", CORPUS, ids=[f"{c.partner}-{n}" for c, n in CORPUS])
def test_a_bad_file_is_quarantined_whole_with_a_report_and_nothing_is_loaded(
        dags, deliver, warehouse, running_stack, contract, corruption):
    week = IsoWeek(2025, 1 + sorted(EXPECTED_REASONS).index(corruption))
    made = deliver(contract, week, seed=7, corruption=corruption)
    before = mart_rows(warehouse, contract, week)

    run, states = run_week(dags[contract.partner], week)

    assert states["receive"] == "failed" and states["publish"] == "upstream_failed", states
    assert mart_rows(warehouse, contract, week) == before, "no partial load"
    last = ledger_rows(warehouse, contract.partner, contract.file_name(week))[-1]
    assert (last["status"], last["reason"]) == ("quarantined", EXPECTED_REASONS[corruption])
    report = json.loads((evidence_dir(f"partner.{contract.partner}", week.monday, run.run_id)
                         / "quarantine_report.json").read_text())
    assert report["reason"] == EXPECTED_REASONS[corruption] and report["sha256"] == made.sha256
    s3 = _s3(running_stack)
    key = last["report_uri"].removeprefix("s3://flowgate-lake/")
    assert json.loads(s3.get_object(Bucket="flowgate-lake", Key=key)["Body"].read())["reason"] == report["reason"]


def test_a_quarantined_file_is_kept_sealed_and_an_operator_can_restore_it(dags, deliver, warehouse, running_stack,
                                                                         tmp_path):
    from flowgate.partner.quarantine import restore_file, sealed_file_key

    week = IsoWeek(2026, 20)
    made = deliver(ACME, week, seed=8, corruption="extra_ssn_column")
    run_week(dags["acme"], week)
    last = ledger_rows(warehouse, "acme", ACME.file_name(week))[-1]
    s3 = _s3(running_stack)

    sealed = s3.get_object(Bucket="flowgate-lake", Key=sealed_file_key(last["report_uri"], ACME.file_name(week)))
    assert gzip.decompress(made.path.read_bytes())[:20] not in sealed["Body"].read(), "sealed, not the raw file"
    restored = restore_file(s3, last["report_uri"], ACME.file_name(week), keys_of(ACME), tmp_path / "restored")
    assert restored.read_bytes() == made.path.read_bytes()


@pytest.mark.parametrize("corruption", sorted(LEGAL_CORRUPTIONS - {"changed_content"}))
def test_legal_oddities_load(dags, deliver, warehouse, corruption):
    week = IsoWeek(2026, 40)
    made = deliver(ACME, week, seed=9, corruption=corruption)

    run, states = run_week(dags["acme"], week)

    assert run.state == "success", states
    assert len(mart_rows(warehouse, ACME, week)) == made.rows
    assert any("\n" in r["merchant_name"] for r in mart_rows(warehouse, ACME, week))


def test_rows_that_pass_the_contract_but_fail_the_gx_suite_are_quarantined_by_the_gate(dags, deliver, warehouse):
    """A file for week 41 holding week 40's figures: every value is well formed, so only
    the suite's delivery-week check (a suite parameter) can catch it."""
    week = IsoWeek(2026, 41)
    deliver(ACME, week, seed=10, week_of_content=week.previous())

    run, states = run_week(dags["acme"], week)

    assert states["receive"] == "success" and states["validate"] == "failed", states
    assert states["publish"] == "upstream_failed" and mart_rows(warehouse, ACME, week) == []
    last = ledger_rows(warehouse, "acme", ACME.file_name(week))[-1]
    assert (last["status"], last["reason"]) == ("quarantined", "gate_failed")
    report = json.loads((evidence_dir("partner.acme", week.monday, run.run_id) / "quarantine_report.json").read_text())
    assert [c["column"] for c in report["checks"]] == ["week_start"]


# --------------------------------------------------------------------------- deadlines and outages


def test_no_file_by_the_deadline_is_a_file_late_alert_naming_partner_and_week(dags, webhook_receiver, running_stack):
    from flowgate.partner.deliver import remove

    _, alerts_file = webhook_receiver
    dag = dags["acme"]
    sensor = dag.get_task("wait_for_file")
    week = IsoWeek(2026, 52)  # never delivered
    remove(running_stack, ACME.remote_path(week))
    sensor.timeout, sensor.poke_interval = 3, 1
    try:
        run, states = run_week(dag, week)
    finally:
        sensor.timeout = ACME.delivery.deadline_hours * 3600
        sensor.poke_interval = ACME.delivery.poke_minutes * 60

    assert states["wait_for_file"] == "failed" and states["receive"] == "upstream_failed"
    (alert,) = [json.loads(line)["payload"]["text"] for line in alerts_file.read_text().splitlines()]
    assert "file late" in alert and "acme" in alert and "2026-W52" in alert and ACME.file_name(week) in alert


def test_sftp_down_is_retried_with_backoff_then_one_clear_alert(dags, running_stack, webhook_receiver):
    from flowgate.devstack import process, services

    _, alerts_file = webhook_receiver
    dag = dags["acme"]
    sensor = dag.get_task("wait_for_file")
    saved = sensor.retry_delay, sensor.max_retry_delay
    sensor.retry_delay, sensor.max_retry_delay = timedelta(seconds=1), timedelta(seconds=2)
    sftp = services.sftp_service(running_stack)
    process.stop(sftp)
    try:
        run, states = run_week(dag, IsoWeek(2025, 51))
    finally:
        sensor.retry_delay, sensor.max_retry_delay = saved
        process.start(sftp)

    waited = next(ti for ti in run.get_task_instances() if ti.task_id == "wait_for_file")
    assert states["wait_for_file"] == "failed" and states["receive"] == "upstream_failed"
    assert waited.try_number == 3, "two retries with backoff before giving up"
    (alert,) = [json.loads(line)["payload"]["text"] for line in alerts_file.read_text().splitlines()]
    assert "wait_for_file" in alert and "try 3" in alert and "file late" not in alert


# --------------------------------------------------------------------------- backfill


def test_a_backfill_of_two_past_weeks_through_the_api_reuses_the_ledger(airflow_api, deliver, warehouse):
    weeks = [IsoWeek(2026, 44), IsoWeek(2026, 45)]
    for n, week in enumerate(weeks):
        deliver(ACME, week, seed=20 + n)
    dag = dag_id(ACME)
    start = lambda w: datetime.combine(w.monday, datetime.min.time(), tzinfo=timezone.utc)  # noqa: E731
    was_paused = airflow_api.wait_for_dag(dag)["is_paused"]
    airflow_api.unpause(dag)
    try:
        results = []
        for _ in range(2):  # the second backfill finds both files in the ledger
            backfill = airflow_api.backfill(dag, f"{start(weeks[0]) + timedelta(hours=6):%Y-%m-%dT%H:%M:%SZ}",
                                            f"{start(weeks[-1]) + timedelta(hours=6):%Y-%m-%dT%H:%M:%SZ}")
            results.append(airflow_api.wait_for_backfill(backfill, timeout=600))
    finally:
        if was_paused:
            airflow_api.pause(dag)

    for runs in results:
        assert [r["state"] for r in runs] == ["success", "success"], runs
    for week in weeks:
        assert len(mart_rows(warehouse, ACME, week)) == ROWS, "each week loaded once, never twice"
        statuses = [r["status"] for r in ledger_rows(warehouse, "acme", ACME.file_name(week))]
        assert statuses == ["loaded", "skipped_duplicate"], statuses


def test_a_quarantine_in_a_run_triggered_through_the_api_reaches_on_call(airflow_api, deliver, running_stack):
    """A manual run from the UI/API has no logical date: the alert must render anyway."""
    from flowgate.devstack.services import alerts_file

    week = IsoWeek(2025, 50)
    deliver(ACME, week, seed=30, corruption="extra_ssn_column")
    dag = dag_id(ACME)
    was_paused = airflow_api.wait_for_dag(dag)["is_paused"]
    airflow_api.unpause(dag)
    try:
        run_id = airflow_api.trigger(dag, conf={"week": str(week)})
        run = airflow_api.wait_for_run(dag, run_id, timeout=300)
    finally:
        if was_paused:
            airflow_api.pause(dag)

    assert run["state"] == "failed"
    # The sink also holds Alertmanager's Slack messages (attachments, no top-level text).
    alerts = [json.loads(line)["payload"].get("text", "") for line in alerts_file(running_stack).read_text().splitlines()]
    (alert,) = [a for a in alerts if run_id in a]
    assert "quarantined" in alert and ACME.file_name(week) in alert and "unexpected_column" in alert


# --------------------------------------------------------------------------- no PII anywhere


DATE_LIKE = __import__("re").compile(r"^\d{4}-\d{2}-\d{2}$")


def test_zz_no_planted_pii_reaches_the_warehouse_logs_xcom_or_evidence(running_stack, warehouse):
    """Runs last in this module: every pii/restricted value any test delivered (the SSNs of
    the extra column included) is searched for in every place the flow writes to."""
    from flowgate.common.evidence import evidence_root
    from flowgate.devstack.postgres import superuser_dsn

    # Dates of birth are checked by the columns' absence above; as text, a date also
    # occurs legitimately (start dates, timestamps), so only distinctive values are scanned.
    needles = sorted(v for v in PLANTED if len(v) >= 6 and not DATE_LIKE.match(v))
    assert len(needles) > 1000, "the tests planted no PII: this scan would prove nothing"
    haystacks: dict[str, str] = {}
    with psycopg.connect(warehouse) as conn:
        tables = conn.execute("select table_schema || '.' || table_name from information_schema.tables "
                              "where table_schema like 'partner%' or table_schema = 'audit'").fetchall()
        for (table,) in tables:
            haystacks[f"warehouse {table}"] = "\n".join(str(r) for r in conn.execute(f"select * from {table}"))
    with psycopg.connect(superuser_dsn(running_stack, "airflow")) as conn:
        haystacks["xcom"] = "\n".join(str(r) for r in conn.execute(
            "select value from xcom where dag_id like 'partner_weekly_ingest__%'"))
    for folder in (running_stack.state_dir / "airflow" / "logs", running_stack.log_dir, evidence_root()):
        for path in folder.rglob("*"):
            if path.is_file() and ("partner" in str(path) or folder == running_stack.log_dir):
                haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert any("partner_weekly_ingest__" in k or "partner." in k for k in haystacks), "nothing was scanned"
    leaks = [(where, value) for where, text in haystacks.items() for value in found_in(needles, text)]
    assert leaks == [], leaks[:10]


WORD = __import__("re").compile(r"[A-Za-z0-9@._+-]+")


def found_in(needles: list[str], text: str) -> list[str]:
    """The needles that occur in ``text``: a substring search only for needles whose every
    word is among the text's words (a set look-up), so 10^5 needles scan megabytes fast."""
    words = set(WORD.findall(text))
    words |= {w.strip("._+-") for w in words}  # a value at the end of a sentence, or in a path
    return [n for n in needles if all(w.strip("._+-") in words or w in words for w in WORD.findall(n))
            and n in text]


# --------------------------------------------------------------------------- helpers


def _s3(cfg):
    from flowgate.devstack.services import s3_client

    return s3_client(cfg)

"""One partner's week, step by step: receive + scrub into stage → gate → publish.

Each step is one Airflow task and takes plain values (a :class:`PartnerRun`), so it
runs and is tested without a scheduler. Any refusal — a file that breaks its contract,
a failed gate, a redelivery under a known name — quarantines the file whole, records
it in the ledger, and raises :class:`FileQuarantined` (final: no retries), whose
message names the partner, the file, the reason and the report. Nothing is published.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psycopg

from flowgate.common.connections import s3_client
from flowgate.common.evidence import evidence_dir
from flowgate.common.files import sha256_of_file
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
from flowgate.partner import crypto, ledger, tables
from flowgate.partner.contract import Contract, IsoWeek
from flowgate.partner.quarantine import FileQuarantined, QuarantineReport, quarantine_file
from flowgate.partner.reader import FileRejected, ReadStats, decompressed, decrypted, record_batches
from flowgate.partner.scrub import Scrubber, Violations


@dataclass(frozen=True)
class PartnerRun:
    contract: Contract
    week: IsoWeek
    dag_id: str
    run_id: str
    run_type: str
    staging_dsn: str  # PostgreSQL: the ledger, the staging table and the gate...
    snowflake_conn_id: str | None = None  # ...and the mart, unless it is this Snowflake connection
    sftp_conn_id: str = "partner_sftp"
    lake_conn_id: str = "lake_s3"
    reprocess_by: str | None = None
    reprocess_reason: str | None = None

    @property
    def dataset(self) -> str:
        return f"partner.{self.contract.partner}"

    @property
    def file_name(self) -> str:
        return self.contract.file_name(self.week)

    @property
    def stage_table(self) -> str:
        return tables.stage_table_name(self.contract, self.run_id)

    @property
    def evidence(self) -> Path:
        return evidence_dir(self.dataset, self.week.monday, self.run_id)

    @cached_property
    def keys(self) -> crypto.PartnerKeys:
        return crypto.load_keys(self.contract.partner, self.contract.keys_conn_id)


# --------------------------------------------------------------------------- helpers


@contextmanager
def private_workdir() -> Iterator[Path]:
    """A 0700 temp folder for the raw and decrypted file, removed whatever happens."""
    path = Path(tempfile.mkdtemp(prefix="flowgate-partner-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def timed(timings: dict, step: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - started, 3)


def _timed_iter(items: Iterable, timings: dict, step: str) -> Iterator:
    """Time spent producing each item of ``items`` (the reader's or the scrubber's own share)."""
    iterator = iter(items)
    while True:
        with timed(timings, step):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def download(run: PartnerRun, target: Path) -> ledger.ReceivedFile:
    """Fetch the week's file over SFTP (the connection pins the host key)."""
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    hook = SFTPHook(ssh_conn_id=run.sftp_conn_id)
    try:
        hook.retrieve_file(run.contract.remote_path(run.week), str(target))
    finally:
        hook.close_conn()
    return ledger.ReceivedFile(run.contract.partner, run.file_name, str(run.week), sha256_of_file(target),
                               target.stat().st_size)


def quarantine(run: PartnerRun, conn: psycopg.Connection, entry_id: int, received: ledger.ReceivedFile,
               raw_file: Path | None, rejected: FileRejected, workdir: Path, rows_received: int | None = None):
    """Keep the file sealed and its report, mark the ledger, and stop the run."""
    report = QuarantineReport(
        partner=run.contract.partner, file_name=received.file_name, week=str(run.week), sha256=received.sha256,
        size_bytes=received.size_bytes, reason=rejected.reason, detail=rejected.detail, checks=rejected.checks,
        run_id=run.run_id, rows_received=rows_received, contract_sha256=run.contract.sha256)
    uri = quarantine_file(s3_client(run.lake_conn_id), report, raw_file, run.keys, run.evidence, workdir)
    ledger.mark_quarantined(conn, entry_id, rejected.reason, uri, rows_received)
    tables.drop_stage(conn, run.stage_table)
    raise FileQuarantined(f"partner {run.contract.partner}: {received.file_name} ({run.week}) quarantined, "
                          f"{rejected.reason}: {rejected.detail[:200]}; report {uri} "
                          f"(evidence {run.evidence})")


# --------------------------------------------------------------------------- steps


def scrub_into_stage(run: PartnerRun, conn: psycopg.Connection, raw_file: Path, workdir: Path,
                     timings: dict) -> ReadStats:
    """Decrypt, stream, check and scrub the file into the run's staging table.

    The COPY runs in one transaction: a file rejected half-way leaves no staged rows.
    """
    stats, violations = ReadStats(), Violations()
    with timed(timings, "decrypt"):
        clear = decrypted(raw_file, run.contract, workdir, run.keys)
    try:
        with conn.transaction(), decompressed(clear, run.contract) as stream:
            tables.create_stage(conn, run.contract, run.stage_table)
            records = _timed_iter(record_batches(stream, run.contract, stats), timings, "parse")
            scrubbed = _timed_iter(Scrubber(run.contract, run.keys).batches(records, violations), timings, "scrub")
            with timed(timings, "stage"):
                staged = tables.copy_batches(conn, run.stage_table, scrubbed)
            if violations:
                raise violations.reject()
            if stats.records == 0:
                raise FileRejected("no_rows", "the file has a header but no records")
            if staged != stats.records:  # cannot happen unless a batch was lost: never publish then
                raise FileRejected("count_mismatch", f"{stats.records} records read, {staged} staged")
    finally:
        if clear != raw_file:
            clear.unlink(missing_ok=True)
    # The stream's own share: parse and scrub are the time spent producing batches.
    timings["stage"] = round(timings["stage"] - timings.get("scrub", 0.0), 3)
    timings["scrub"] = round(timings.get("scrub", 0.0) - timings.get("parse", 0.0), 3)
    return stats


def receive_and_stage(run: PartnerRun) -> dict:
    """Download the file, decide with the ledger, then scrub it into stage (or quarantine it).

    Returns ``{"decision": "skipped_duplicate", ...}`` for a file already processed: the
    caller skips the rest of the run.
    """
    timings: dict = {}
    with private_workdir() as workdir:
        raw = workdir / run.file_name
        with timed(timings, "download"):
            received = download(run, raw)
        with psycopg.connect(run.staging_dsn) as conn:
            ledger.ensure_ledger(conn)
            entry = ledger.decide(conn, received, dag_id=run.dag_id, run_id=run.run_id,
                                  reprocess_by=run.reprocess_by, reprocess_reason=run.reprocess_reason)
            file_info = {"file_name": received.file_name, "sha256": received.sha256,
                         "size_bytes": received.size_bytes, "ledger_id": entry.id}
            if entry.decision is ledger.Decision.DUPLICATE:
                return {"decision": entry.decision.value, **file_info}
            if entry.decision is ledger.Decision.CONFLICT:
                quarantine(run, conn, entry.id, received, raw, FileRejected(
                    "redelivery_conflict", f"{received.file_name} was delivered before with other content "
                    f"(sha256 {entry.previous_sha256[:12]}…, now {received.sha256[:12]}…): never overwritten; "
                    "reprocess on purpose with the reprocess param"), workdir)
            try:
                stats = scrub_into_stage(run, conn, raw, workdir, timings)
            except FileRejected as rejected:
                quarantine(run, conn, entry.id, received, raw, rejected, workdir)
    return {"decision": "process", **file_info, "rows_received": stats.records, "trailer_rows": stats.trailer_rows,
            "stage_table": run.stage_table, "contract_sha256": run.contract.sha256, "timings": timings}


def validate_stage(run: PartnerRun, staged: dict) -> dict:
    """The GX gate over the staged rows, in the database; quarantine on failure."""
    from flowgate.common import gx_gate
    from flowgate.partner.suite import suite_parameters
    from flowgate.partner.tables import STAGE_SCHEMA

    started = time.perf_counter()
    suite = gx_gate.load_suite(run.contract.suite, for_table_gate=True)
    expected = staged["trailer_rows"] if staged.get("trailer_rows") is not None else staged["rows_received"]
    result = gx_gate.run_table_gate(suite, run.staging_dsn, STAGE_SCHEMA, staged["stage_table"],
                                    run.evidence.parent, run.run_id,
                                    suite_parameters=suite_parameters(expected, run.week), unexpected_sample=0)
    verdict = {**result.verdict(), "contract_sha256": run.contract.sha256,
               "seconds": round(time.perf_counter() - started, 3)}
    if not result.success:
        received = ledger.ReceivedFile(run.contract.partner, staged["file_name"], str(run.week), staged["sha256"],
                                       staged["size_bytes"])
        with private_workdir() as workdir, psycopg.connect(run.staging_dsn) as conn:
            raw = workdir / run.file_name
            again = download(run, raw)
            quarantine(run, conn, staged["ledger_id"], received, raw if again.sha256 == received.sha256 else None,
                       FileRejected("gate_failed", f"{len(result.failed)} of {result.evaluated} expectations failed",
                                    [{"check": "great_expectations", **f} for f in result.failed]),
                       workdir, staged["rows_received"])
    return verdict


def publish(run: PartnerRun, staged: dict, gate: dict) -> dict:
    """Replace the week in the partner's mart table, with its audit row, and mark the file loaded."""
    audit = AuditContext(
        dag_id=run.dag_id, run_id=run.run_id, run_type=run.run_type, dataset=run.dataset,
        code_version=code_version(),
        input_counts={"file": staged["file_name"], "sha256": staged["sha256"], "rows_received": staged["rows_received"],
                      "trailer_rows": staged.get("trailer_rows")},
        control_totals={"rows": staged["rows_received"], "contract_sha256": run.contract.sha256},
        gate_results={"expectations": gate})
    started = time.perf_counter()
    with psycopg.connect(run.staging_dsn) as conn:
        if run.snowflake_conn_id:
            result = _publish_to_snowflake(run, conn, staged, audit)
            with conn.transaction():
                ledger.mark_loaded(conn, staged["ledger_id"], staged["rows_received"], sum(result.rows_by_table.values()))
        else:
            with conn.transaction():  # the week, its audit row and the ledger's "loaded": one commit
                conn.execute(tables.mart_ddl(run.contract))
                conn.execute(AUDIT_DDL)
                result = publish_partition(conn, "delivery_week", run.week.monday, [_partition_table(run, staged)], audit)
                ledger.mark_loaded(conn, staged["ledger_id"], staged["rows_received"], sum(result.rows_by_table.values()))
        tables.drop_stage(conn, staged["stage_table"])
    return {"rows_by_table": result.rows_by_table, "checksum": result.checksum, "audit_id": result.audit_id,
            "seconds": round(time.perf_counter() - started, 3)}


def _partition_table(run: PartnerRun, staged: dict) -> PartitionTable:
    key = ("delivery_week", *(run.contract.column(k).output_name for k in run.contract.key))
    return PartitionTable(run.contract.table, key, tables.insert_from_stage(
        run.contract, staged["stage_table"], run.week.monday, staged["file_name"], run.run_id))


def _publish_to_snowflake(run: PartnerRun, conn: psycopg.Connection, staged: dict, audit: AuditContext):
    """Ship the staged week to a Snowflake mart, replacing the week atomically there."""
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook
    from psycopg import sql

    columns = tables.mart_columns(run.contract)
    key = [run.contract.column(k).output_name for k in run.contract.key]
    rows_query = tables.stage_rows(run.contract, staged["stage_table"], run.week.monday, staged["file_name"],
                                   run.run_id)
    query = sql.SQL("{} order by {}").format(rows_query, sql.SQL(", ").join(map(sql.Identifier, key)))
    rows = conn.execute(query).fetchall()
    snowflake = SnowflakeHook(snowflake_conn_id=run.snowflake_conn_id).get_conn()
    try:
        cursor = snowflake.cursor()
        for statement in (*snowflake_ddl(run.contract), *SNOWFLAKE_AUDIT_DDL):
            cursor.execute(statement)
        return publish_partition_rows(snowflake, "delivery_week", run.week.monday,
                                      [PartitionRows(run.contract.table, columns, rows)], audit)
    finally:
        snowflake.close()


def snowflake_ddl(contract: Contract) -> tuple[str, ...]:
    types = {"text": "varchar", "bigint": "number(19, 0)", "date": "date"}
    columns = ", ".join(f"{c.output_name} {types.get(tables.sql_type(c), tables.sql_type(c))}"
                        for c in contract.loaded_columns)
    return (f"create schema if not exists {contract.schema}",
            f"create table if not exists {contract.table} (delivery_week date not null, {columns}, "
            "source_file varchar not null, source_row number not null, run_id varchar not null)")

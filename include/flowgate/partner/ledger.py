"""``partner.file_ledger``: every file a run saw, and what became of it.

The file's name plus its SHA-256 make processing idempotent. Each run that sees a file
adds one row (the history is never rewritten, only a run's own row moves from
``received`` to its outcome):

- a name never seen → ``received``, then ``loaded`` or ``quarantined``;
- the same name and the same SHA-256 again → ``skipped_duplicate``, a no-op;
- the same name with other content → ``quarantined`` (``redelivery_conflict``): a partner
  never silently overwrites what was loaded;
- an operator's reprocess (a DAG param) processes the file again, and the row records
  who asked and why.

Decisions for one file are serialised by an advisory lock, so two runs can never both
decide to load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import psycopg
import psycopg.rows

LEDGER_DDL = """
create schema if not exists partner;
create table if not exists partner.file_ledger (
    id bigserial primary key,
    partner text not null,
    file_name text not null,
    week text not null,
    sha256 text not null,
    size_bytes bigint not null,
    received_at timestamptz not null default now(),
    status text not null check (status in ('received', 'loaded', 'skipped_duplicate', 'quarantined')),
    reason text,
    dag_id text not null,
    run_id text not null,
    requested_by text,          -- a reprocess: who asked ...
    request_reason text,        -- ... and why
    rows_received bigint,
    rows_loaded bigint,
    report_uri text,
    decided_at timestamptz
);
create index if not exists file_ledger_file on partner.file_ledger (partner, file_name, id);
"""


class Decision(str, Enum):
    PROCESS = "process"
    DUPLICATE = "skipped_duplicate"
    CONFLICT = "redelivery_conflict"


@dataclass(frozen=True)
class ReceivedFile:
    partner: str
    file_name: str
    week: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class Entry:
    id: int
    decision: Decision
    previous_sha256: str | None = None


def ensure_ledger(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('partner.file_ledger ddl'))")
        conn.execute(LEDGER_DDL)


def decide(conn: psycopg.Connection, received: ReceivedFile, *, dag_id: str, run_id: str,
           reprocess_by: str | None = None, reprocess_reason: str | None = None) -> Entry:
    """Record that this run received the file and say what to do with it.

    A retry of the same run finds its own ``received`` row and carries on with it.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{received.partner}/{received.file_name}",))
        history = conn.execute(
            "select id, sha256, status, run_id from partner.file_ledger "
            "where partner = %s and file_name = %s and status <> 'skipped_duplicate' order by id desc",
            (received.partner, received.file_name)).fetchall()
        own = next((row for row in history if row[3] == run_id and row[2] == "received"
                    and row[1] == received.sha256), None)
        if own:
            return Entry(own[0], Decision.PROCESS)
        if reprocess_by:
            return Entry(_insert(conn, received, "received", None, dag_id, run_id, reprocess_by, reprocess_reason),
                         Decision.PROCESS)
        if not history:
            return Entry(_insert(conn, received, "received", None, dag_id, run_id), Decision.PROCESS)
        other = next((row for row in history if row[1] != received.sha256), None)
        if other:
            entry_id = _insert(conn, received, "quarantined", Decision.CONFLICT.value, dag_id, run_id)
            return Entry(entry_id, Decision.CONFLICT, previous_sha256=other[1])
        return Entry(_insert(conn, received, "skipped_duplicate", "same name and sha256 as ledger entry "
                             f"{history[0][0]} ({history[0][2]})", dag_id, run_id), Decision.DUPLICATE)


def _insert(conn, received: ReceivedFile, status: str, reason: str | None, dag_id: str, run_id: str,
            requested_by: str | None = None, request_reason: str | None = None) -> int:
    return conn.execute(
        "insert into partner.file_ledger (partner, file_name, week, sha256, size_bytes, status, reason, dag_id, "
        "run_id, requested_by, request_reason, decided_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "case when %s <> 'received' then now() end) returning id",
        (received.partner, received.file_name, received.week, received.sha256, received.size_bytes, status,
         reason, dag_id, run_id, requested_by, request_reason, status)).fetchone()[0]


def mark_quarantined(conn: psycopg.Connection, entry_id: int, reason: str, report_uri: str,
                     rows_received: int | None = None) -> None:
    with conn.transaction():
        conn.execute("update partner.file_ledger set status = 'quarantined', reason = %s, report_uri = %s, "
                     "rows_received = %s, decided_at = now() where id = %s",
                     (reason, report_uri, rows_received, entry_id))


def mark_loaded(conn: psycopg.Connection, entry_id: int, rows_received: int, rows_loaded: int) -> None:
    """Call inside the publish's transaction: loaded and published are one fact."""
    conn.execute("update partner.file_ledger set status = 'loaded', reason = null, rows_received = %s, "
                 "rows_loaded = %s, decided_at = now() where id = %s", (rows_received, rows_loaded, entry_id))


def entries(conn: psycopg.Connection, partner: str, file_name: str | None = None) -> list[dict]:
    """The ledger's rows for a partner (and file), oldest first: what the runbook queries."""
    query = "select * from partner.file_ledger where partner = %s"
    params: list = [partner]
    if file_name:
        query += " and file_name = %s"
        params.append(file_name)
    return conn.cursor(row_factory=psycopg.rows.dict_row).execute(query + " order by id", params).fetchall()

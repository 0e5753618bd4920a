"""Extract one business date from core banking into a staging schema of the mart.

The source is read in a single REPEATABLE READ, READ ONLY transaction, so postings,
control totals and balances come from one consistent snapshot even while the core
keeps writing. Rows move with COPY (source → mart) and never through Python objects:
it is the same path the bench uses as its floor, in PostgreSQL's binary format (no
number or timestamp is printed as text and parsed back).

The staging tables are UNLOGGED: they live for one run, are rebuilt by re-running the
stage task, and so need no WAL. After a crash of the mart's server PostgreSQL empties
them; the gates then fail closed (no rows, nothing reconciles) and the day is re-run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg import sql

# What the mart's staging schema receives; each is one SELECT over the snapshot.
# {d} is the business date.
SNAPSHOT_QUERIES = {
    "postings": (
        "select posting_id, transaction_id, account_id, gl_code, currency, side, amount, value_date, "
        "posted_at, status, reversal_of from core.postings where value_date = {d}",  # unordered: no reader needs it
        "posting_id bigint, transaction_id bigint, account_id bigint, gl_code text, currency text, side text, "
        "amount numeric(18,2), value_date date, posted_at timestamptz, status text, reversal_of bigint",
    ),
    "control_totals": (
        "select business_date, gl_code, currency, posting_count, debit_total, credit_total "
        "from core.control_totals where business_date = {d} order by gl_code, currency",
        "business_date date, gl_code text, currency text, posting_count bigint, "
        "debit_total numeric(20,2), credit_total numeric(20,2)",
    ),
    "accounts": (
        "select account_id, customer_id, product, gl_code, currency from core.accounts order by account_id",
        "account_id bigint, customer_id bigint, product text, gl_code text, currency text",
    ),
    # Balances are cumulative movements up to the date: independent of which days were
    # published before, so runs and backfills can go in any order.
    "account_movements": (
        "select account_id, currency, "
        "sum(case when side = 'debit' then amount else -amount end)::numeric(20,2) as movement_to_date "
        "from core.postings where value_date <= {d} and status <> 'pending' "
        "group by account_id, currency order by account_id, currency",
        "account_id bigint, currency text, movement_to_date numeric(20,2)",
    ),
}


EXTRACT_APPLICATION = "flowgate-finance-extract"


@dataclass(frozen=True)
class StagedDate:
    schema: str
    business_date: date
    row_counts: dict[str, int]


def staging_schema_name(business_date: date, run_id: str) -> str:
    """One schema per run: runs of different dates, or retries, never share tables."""
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:10]
    return f"stage_{business_date:%Y%m%d}_{digest}"


def stage_business_date(source_dsn: str, mart_dsn: str, business_date: date, schema: str) -> StagedDate:
    counts: dict[str, int] = {}
    # Named connections: an operator (or a test) can find the extract in pg_stat_activity.
    with psycopg.connect(source_dsn, application_name=EXTRACT_APPLICATION) as src, \
            psycopg.connect(mart_dsn, application_name=EXTRACT_APPLICATION) as mart:
        src.read_only = True
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with src.transaction(), mart.transaction():
            mart.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
            mart.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
            for table, (query, columns) in SNAPSHOT_QUERIES.items():
                target = sql.Identifier(schema, table)
                mart.execute(sql.SQL("create unlogged table {} ({})").format(target, sql.SQL(columns)))
                select = sql.SQL(query).format(d=sql.Literal(business_date))
                counts[table] = _copy_rows(src, mart, select, target)
                # Fresh tables have no statistics: without them the planner guesses a few
                # thousand rows and sorts a million on disk where a hash aggregate fits in
                # memory (gates and publish ran ~2x slower).
                mart.execute(sql.SQL("analyze {}").format(target))
    return StagedDate(schema, business_date, counts)


def _copy_rows(src: psycopg.Connection, mart: psycopg.Connection, select: sql.Composed, target) -> int:
    """COPY one snapshot query into its staging table; returns the rows copied (COPY's own
    count: no second scan of the table)."""
    copy_out = sql.SQL("copy ({}) to stdout (format binary)").format(select)
    copy_in = sql.SQL("copy {} from stdin (format binary)").format(target)
    writer_cursor = mart.cursor()
    with src.cursor().copy(copy_out) as reader, writer_cursor.copy(copy_in) as writer:
        for chunk in reader:
            writer.write(chunk)
    return writer_cursor.rowcount


def drop_staging(mart_dsn: str, schema: str) -> None:
    with psycopg.connect(mart_dsn, autocommit=True) as mart:
        mart.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))

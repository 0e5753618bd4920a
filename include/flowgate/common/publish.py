"""Atomic publish of a partition, with its audit record, in one database transaction.

Either every table of the partition is replaced *and* the audit row is written, or
nothing changes: a reader never sees half a day, and there is no published day without
its audit row. The finance and partner flows both publish through here.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

AUDIT_DDL = """
create schema if not exists audit;
create table if not exists audit.publish_log (
    id bigserial primary key,
    dag_id text not null,
    run_id text not null,
    run_type text not null,            -- scheduled, manual or backfill
    dataset text not null,
    business_date date not null,
    code_version text not null,
    input_counts jsonb not null,
    control_totals jsonb not null,
    output_rows bigint not null,
    output_checksum text not null,
    gate_results jsonb not null,       -- each gate's verdict and where its evidence is
    published_at timestamptz not null default now()
);
-- Only when missing: CREATE INDEX takes a SHARE lock on the table even when the index
-- exists, and two publishes holding it then deadlock on their audit INSERTs.
do $$ begin
    if to_regclass('audit.publish_log_dataset_date') is null then
        create index if not exists publish_log_dataset_date on audit.publish_log (dataset, business_date);
    end if;
end $$;
"""


@dataclass(frozen=True)
class PartitionTable:
    """One table of the partition: its key (for a stable checksum) and the rows to write."""

    name: str  # schema.table
    key: tuple[str, ...]
    select: sql.Composable


@dataclass(frozen=True)
class AuditContext:
    dag_id: str
    run_id: str
    run_type: str
    dataset: str
    code_version: str
    input_counts: dict[str, Any]
    control_totals: dict[str, Any]
    gate_results: dict[str, Any]


@dataclass(frozen=True)
class PublishResult:
    rows_by_table: dict[str, int]
    checksum: str
    audit_id: int


_AUDIT_INSERT = (
    "insert into audit.publish_log (dag_id, run_id, run_type, dataset, business_date, code_version, "
    "input_counts, control_totals, output_rows, output_checksum, gate_results) "
    "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _audit_values(audit: AuditContext, value, output_rows: int, checksum: str) -> tuple:
    return (audit.dag_id, audit.run_id, audit.run_type, audit.dataset, value, audit.code_version,
            json.dumps(audit.input_counts), json.dumps(audit.control_totals), output_rows, checksum,
            json.dumps(audit.gate_results))


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def partition_checksum(conn: psycopg.Connection, table: PartitionTable, partition_column: str, value) -> str:
    """md5 over the partition's rows in key order: equal checksums mean equal tables.

    The rows are read in heap order and sorted, not walked through the key's index: for
    rows just inserted in another order (the planner has no statistics for them yet) the
    index scan hopped over the heap row by row, 10 s instead of 4.5 for a million rows.
    The sort leaves out the partition column: it is one value in the partition, so the
    order (and the checksum) is the same, but a sort whose first column never differs
    cannot use its abbreviated keys and compares every pair in full (1.5-2x slower).
    """
    order = sql.SQL(", ").join(
        sql.SQL("t.{}").format(sql.Identifier(k)) for k in _sort_key(table.key, partition_column))
    query = sql.SQL("select coalesce(md5(string_agg(t::text, E'\\n' order by {order})), md5('')) "
                    "from {table} t where t.{col} = %s").format(
        order=order, table=_table(table.name), col=sql.Identifier(partition_column))
    with _local_setting(conn, "enable_indexscan", "off"):
        return conn.execute(query, (value,)).fetchone()[0]


def _sort_key(key: tuple[str, ...], partition_column: str) -> tuple[str, ...]:
    """The key's columns that vary inside one partition (all of them if only that one)."""
    return tuple(k for k in key if k != partition_column) or key


@contextmanager
def _local_setting(conn: psycopg.Connection, name: str, value: str):
    """A planner setting for the statements of the block (then as it was), in the transaction."""
    previous = conn.execute("select current_setting(%s)", (name,)).fetchone()[0]
    conn.execute("select set_config(%s, %s, true)", (name, value))
    try:
        yield
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute("select set_config(%s, %s, true)", (name, previous))


def publish_partition(
    conn: psycopg.Connection,
    partition_column: str,
    value,
    tables: list[PartitionTable],
    audit: AuditContext,
) -> PublishResult:
    """Replace ``value``'s partition of every table and log it, all in one transaction."""
    rows: dict[str, int] = {}
    checksums: dict[str, str] = {}
    with conn.transaction():
        for table in tables:
            if _list_partitioned_by(conn, table.name, partition_column):
                rows[table.name], checksums[table.name] = _swap_partition(conn, table, partition_column, value)
                continue
            conn.execute(sql.SQL("delete from {} where {} = %s").format(
                _table(table.name), sql.Identifier(partition_column)), (value,))
            cursor = conn.execute(sql.SQL("insert into {} ").format(_table(table.name)) + table.select)
            rows[table.name] = cursor.rowcount
            checksums[table.name] = partition_checksum(conn, table, partition_column, value)
        checksum = hashlib.md5("".join(checksums[t.name] for t in tables).encode()).hexdigest()
        audit_id = conn.execute(_AUDIT_INSERT + " returning id",
                                _audit_values(audit, value, sum(rows.values()), checksum)).fetchone()[0]
    return PublishResult(rows, checksum, audit_id)


# --- A table LIST-partitioned on the partition column: one partition per value ------------
#
# Replacing a value's rows in a table with a primary key over every partition (a year of
# weeks) means maintaining that big index row by row: 9-12 s of the 1M-row partner week.
# When the table is partitioned by the value instead, the new rows are written to a table
# of their own with no index (as fast as a load gets), its key is built in one sort, and
# the old partition is swapped for it: still one transaction, the audit row with it, and a
# reader sees the old week or the new one, never both or none.


def _list_partitioned_by(conn: psycopg.Connection, name: str, column: str) -> bool:
    """Whether ``name`` is LIST-partitioned on ``column`` alone, a date (the swap's case)."""
    found = conn.execute(
        "select p.partstrat, p.partnatts, a.attname, format_type(a.atttypid, a.atttypmod) "
        "from pg_partitioned_table p join pg_attribute a on a.attrelid = p.partrelid and a.attnum = p.partattrs[0] "
        "where p.partrelid = to_regclass(%s)", (_table(name).as_string(conn),)).fetchone()
    return found is not None and found[0] == "l" and found[1] == 1 and found[2] == column and found[3] == "date"


def _swap_partition(conn: psycopg.Connection, table: PartitionTable, partition_column: str, value) -> tuple[int, str]:
    """Write ``value``'s rows into a new partition, then put it in place of the old one.

    Returns (rows, checksum). The heavy part (load, key, checksum) happens before the old
    partition is dropped, so the exclusive lock on the table (which readers wait for, as
    they wait for any DDL) lasts from the swap to the commit. Publishes into the same
    table wait for each other, first thing (of the same value: the last one wins, as with
    delete + insert): two of them each holding the table's share lock and asking for its
    exclusive one would deadlock.
    """
    schema, base = table.name.split(".")
    parent = _table(table.name)
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"flowgate.publish/{table.name}",))
    name = f"{base[:32]}_{re.sub(r'[^0-9a-z]', '', str(value).lower())[:16]}_{secrets.token_hex(4)}"
    new = sql.Identifier(schema, name)
    conn.execute(sql.SQL("create table {} (like {} including defaults including constraints including generated)")
                 .format(new, parent))
    rows = conn.execute(sql.SQL("insert into {} ").format(new) + table.select).rowcount
    key = [r[0] for r in conn.execute(
        "select a.attname from pg_index i cross join unnest(i.indkey) with ordinality k(attnum, n) "
        "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "where i.indrelid = to_regclass(%s) and i.indisprimary order by k.n", (parent.as_string(conn),))]
    if key:  # the parent's key, built once over the sorted rows; ATTACH adopts it
        conn.execute(sql.SQL("alter table {} add primary key ({})").format(
            new, sql.SQL(", ").join(map(sql.Identifier, key))))
    checksum = partition_checksum(conn, PartitionTable(f"{schema}.{name}", table.key, table.select),
                                  partition_column, value)
    old = conn.execute(
        "select c.oid::regclass::text from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = to_regclass(%s) and pg_get_expr(c.relpartbound, c.oid) = "
        "'FOR VALUES IN (' || quote_literal(%s::date::text) || ')'", (parent.as_string(conn), value)).fetchall()
    for (partition,) in old:
        conn.execute(sql.SQL("drop table {}").format(sql.SQL(partition)))
    conn.execute(sql.SQL("alter table {} attach partition {} for values in ({})").format(
        parent, new, sql.Literal(value)))
    return rows, checksum


# --- Any DB-API warehouse (Snowflake): the rows travel, the same guarantees hold ------------

SNOWFLAKE_AUDIT_DDL = (
    "create schema if not exists audit",
    """create table if not exists audit.publish_log (
        id number autoincrement, dag_id varchar not null, run_id varchar not null, run_type varchar not null,
        dataset varchar not null, business_date date not null, code_version varchar not null,
        input_counts varchar not null, control_totals varchar not null, output_rows number not null,
        output_checksum varchar not null, gate_results varchar not null,
        published_at timestamp_tz not null default current_timestamp())""",
)


@dataclass(frozen=True)
class PartitionRows:
    """One table of the partition, its rows already computed (in key order)."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple]


def rows_checksum(tables: list[PartitionRows]) -> str:
    """md5 over a canonical text of every row: the same rows always give the same value."""
    digest = hashlib.md5()
    for table in tables:
        digest.update(table.name.encode())
        for row in table.rows:
            digest.update(("\t".join("" if v is None else str(v) for v in row) + "\n").encode())
    return digest.hexdigest()


def publish_partition_rows(conn, partition_column: str, value, tables: list[PartitionRows],
                           audit: AuditContext) -> PublishResult:
    """Replace ``value``'s partition in every table and log it, in one DB-API transaction.

    For warehouses we cannot run the transform in (Snowflake): the rows are computed in
    the staging database and shipped here. Any error rolls the whole partition back.
    """
    cursor = conn.cursor()
    checksum = rows_checksum(tables)
    try:
        cursor.execute("begin")
        for table in tables:
            cursor.execute(f"delete from {table.name} where {partition_column} = %s", (value,))
            if table.rows:
                placeholders = ", ".join(["%s"] * len(table.columns))
                cursor.executemany(f"insert into {table.name} ({', '.join(table.columns)}) values ({placeholders})",
                                   table.rows)
        cursor.execute(_AUDIT_INSERT, _audit_values(audit, value, sum(len(t.rows) for t in tables), checksum))
        cursor.execute("select max(id) from audit.publish_log where run_id = %s", (audit.run_id,))
        audit_id = cursor.fetchone()[0]
        cursor.execute("commit")
    except Exception:
        cursor.execute("rollback")
        raise
    return PublishResult({t.name: len(t.rows) for t in tables}, checksum, audit_id)

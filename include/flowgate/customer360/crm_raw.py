"""``raw_crm.contacts`` and ``raw_crm.companies``: CRM records as received, one row a version.

Each row is one record as the API sent it (``payload``, jsonb), when it landed
(``_loaded_at``: the commit of its page) and which run loaded it (``_run_id``). ``id``,
``updated_at`` and ``archived`` are copied out of the payload only to key it:

- the key is (id, updated_at, archived), and a row already there is left alone
  (``ON CONFLICT DO NOTHING``): the lookback window, a resumed page or a re-run reads
  records it has loaded before, and raw must not grow with every re-read;
- a new version of a record (a new updatedAt) is a new row: raw keeps the history, dbt's
  staging picks the newest per id and its snapshot builds SCD2 from it;
- ``archived`` is in the key because a deletion may not move updatedAt (HubSpot does not
  promise it does): the archived version must still land beside the live one.

A page is one statement: PostgreSQL unpacks the JSON array itself.
"""

from __future__ import annotations

import json

import psycopg
from psycopg import sql

RAW_SCHEMA = "raw_crm"
TABLES = ("contacts", "companies")

_DDL = """
create table if not exists {table} (
    id text not null,
    updated_at timestamptz not null,
    archived boolean not null,
    payload jsonb not null,
    _loaded_at timestamptz not null default now(),
    _run_id text not null,
    primary key (id, updated_at, archived)
)
"""

_INSERT_PAGE = """
insert into {table} (id, updated_at, archived, payload, _run_id)
select r ->> 'id', (r ->> 'updatedAt')::timestamptz, coalesce((r ->> 'archived')::boolean, false), r, %(run_id)s
from jsonb_array_elements(%(page)s::jsonb) as r
on conflict (id, updated_at, archived) do nothing
"""


def raw_table(schema: str, table: str) -> sql.Composed:
    if table not in TABLES:
        raise ValueError(f"no raw CRM table {table!r}")
    return sql.Identifier(schema, table)


def ensure_raw_tables(conn: psycopg.Connection, schema: str = RAW_SCHEMA) -> None:
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    for table in TABLES:
        conn.execute(sql.SQL(_DDL).format(table=raw_table(schema, table)))


def insert_page(conn: psycopg.Connection, schema: str, table: str, records: list[dict], run_id: str) -> int:
    """Land one page of records; returns how many were new (the others were there already)."""
    if not records:
        return 0
    cur = conn.execute(sql.SQL(_INSERT_PAGE).format(table=raw_table(schema, table)),
                       {"page": json.dumps(records), "run_id": run_id})
    return cur.rowcount

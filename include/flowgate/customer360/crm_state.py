"""Where each CRM stream stands: its cursor and, mid-pass, the page it has reached.

A *stream* is one listing of the CRM (live contacts, archived contacts, live companies,
archived companies). Its row in ``raw_crm._extract_state`` holds:

- ``cursor_ms`` — the newest updatedAt of the last *complete* pass: the next pass reads
  from ``cursor_ms - lookback``;
- while a pass is under way, its lower bound, the API cursor of its next page, the newest
  updatedAt it has loaded so far and its page and record counts.

The state lives in PostgreSQL, in the warehouse beside the raw tables, and not in a file
under the state dir, because each page's rows and the checkpoint that moves past them
commit in *one transaction*: a crash can lose at most the page in flight, never land a
page twice or skip one. And an Airflow retry may run on another worker, where a local
file would not be (in Docker and production the workers share no disk, only the database).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg
import psycopg.rows
from psycopg import sql

STATE_TABLE = "_extract_state"

_DDL = """
create table if not exists {table} (
    stream text primary key,
    cursor_ms bigint,                 -- newest updatedAt of the last complete pass
    status text not null check (status in ('complete', 'in_progress')),
    window_start_ms bigint,           -- the pass in progress: from here (null: everything) ...
    next_after text,                  -- ... the API cursor of its next page (null: its first)
    high_ms bigint,                   -- ... the newest updatedAt it has loaded
    pages bigint not null default 0,
    records bigint not null default 0,
    query_results bigint not null default 0,  -- ... and what its current search query returned
    run_id text,                      -- the run that last moved this row
    pass_started_at timestamptz,
    updated_at timestamptz not null default now()
)
"""


def newest(*times_ms: int | None) -> int | None:
    return max((t for t in times_ms if t is not None), default=None)


@dataclass(frozen=True)
class Pass:
    """One pass over a stream, possibly spread over several runs (budget, crash)."""
    window_start_ms: int | None
    next_after: str | None = None
    high_ms: int | None = None
    pages: int = 0
    records: int = 0
    query_results: int = 0  # results the current search query has returned (HubSpot caps it)

    def after_page(self, next_after: str | None, page_high_ms: int | None, records: int) -> Pass:
        return replace(self, next_after=next_after, high_ms=newest(self.high_ms, page_high_ms), pages=self.pages + 1,
                       records=self.records + records, query_results=self.query_results + records)

    def reanchored(self) -> Pass:
        """A new query from the newest updatedAt read (GTE: its ties are read again, and land
        as no-ops), for when this one has paged as far as the CRM lets one query go."""
        if self.high_ms is None or self.high_ms == self.window_start_ms:
            raise RuntimeError("a whole capped query shares one updatedAt: cannot page past it")
        return replace(self, window_start_ms=self.high_ms, next_after=None, query_results=0)


@dataclass(frozen=True)
class StreamState:
    stream: str
    cursor_ms: int | None
    in_progress: Pass | None


def state_table(schema: str) -> sql.Composed:
    return sql.Identifier(schema, STATE_TABLE)


def ensure_state_table(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL(_DDL).format(table=state_table(schema)))


def load_state(conn: psycopg.Connection, schema: str, stream: str) -> StreamState:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(sql.SQL("select * from {} where stream = %s").format(state_table(schema)),
                          (stream,)).fetchone()
    if row is None:
        return StreamState(stream, None, None)
    in_progress = None
    if row["status"] == "in_progress":
        in_progress = Pass(row["window_start_ms"], row["next_after"], row["high_ms"], row["pages"], row["records"],
                           row["query_results"])
    return StreamState(stream, row["cursor_ms"], in_progress)


def save_progress(conn: psycopg.Connection, schema: str, stream: str, cursor_ms: int | None,
                  current: Pass, run_id: str, new_pass: bool = False) -> None:
    """Checkpoint a pass in progress (call it in the transaction that landed its page)."""
    conn.execute(sql.SQL("""
        insert into {table} (stream, cursor_ms, status, window_start_ms, next_after, high_ms, pages, records,
                             query_results, run_id, pass_started_at, updated_at)
        values (%(stream)s, %(cursor)s, 'in_progress', %(start)s, %(after)s, %(high)s, %(pages)s, %(records)s,
                %(query_results)s, %(run_id)s, now(), now())
        on conflict (stream) do update set
            cursor_ms = excluded.cursor_ms, status = 'in_progress', window_start_ms = excluded.window_start_ms,
            next_after = excluded.next_after, high_ms = excluded.high_ms, pages = excluded.pages,
            records = excluded.records, query_results = excluded.query_results, run_id = excluded.run_id,
            updated_at = now(),
            pass_started_at = case when %(new_pass)s then now() else {table}.pass_started_at end
    """).format(table=state_table(schema)), {
        "stream": stream, "cursor": cursor_ms, "start": current.window_start_ms, "after": current.next_after,
        "high": current.high_ms, "pages": current.pages, "records": current.records,
        "query_results": current.query_results, "run_id": run_id,
        "new_pass": new_pass,
    })


def complete_pass(conn: psycopg.Connection, schema: str, stream: str, cursor_ms: int | None,
                  finished: Pass, run_id: str) -> int | None:
    """The pass is done: the cursor moves to the newest updatedAt it saw; returns the cursor."""
    cursor = newest(cursor_ms, finished.high_ms)
    conn.execute(sql.SQL("""
        update {table} set cursor_ms = %(cursor)s, status = 'complete', next_after = null, high_ms = null,
               query_results = 0,
               pages = %(pages)s, records = %(records)s, run_id = %(run_id)s, updated_at = now()
        where stream = %(stream)s
    """).format(table=state_table(schema)), {"cursor": cursor, "pages": finished.pages,
                                              "records": finished.records, "run_id": run_id, "stream": stream})
    return cursor

"""``raw_mobile`` in the warehouse: each event once, its drift listed, its conflicts counted.

One transaction per Spark micro-batch (:func:`load_batch`), so a batch is in the
warehouse whole or not at all. Spark replays a batch whose commit it had not recorded
(a crash between the warehouse's commit and the checkpoint's), and the app resends
events (at least once): every write is therefore idempotent on a business key.

- ``events``: the payload as received (``jsonb``, lossless: a field the schema does not
  know is there), typed envelope columns, where Kafka had it. COPY into a temporary
  stage, then ``INSERT ... ON CONFLICT (event_id) DO NOTHING``: the first copy stands.
- ``schema_drift``: one row per (field, change); first_seen is the earliest event time
  that showed it (and that event's app version) whatever order batches come in;
  observed types accumulate; ``notified_at`` is set once the owning team was told
  (``drift_alerts``); ``type_conflicts`` counts the events whose value of that field did
  not fit its typed column.
- ``type_conflicts``: one row per (event, field) that did not fit (its value stays in the
  payload; the column is null). The counter above only grows by rows new here, so a
  replay counts nothing twice.
- ``rejected``: messages that are not an event with an id (kept whole with the reason,
  keyed by their Kafka coordinates): received = loaded + duplicates + rejected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from flowgate.customer360.mobile_schema import Examined, ExpectedSchema, Rejected, summarise_drift

RAW_SCHEMA = "raw_mobile"

DDL = """
create schema if not exists {s};
create table if not exists {s}.events (
    event_id        text primary key,
    device_id       text,
    user_id         text,          -- null until login, and where the app sent another type
    event_name      text,
    event_ts        timestamptz,   -- the app's ts
    app_version     text,
    payload         jsonb not null, -- the event as received, every field
    type_conflicts  integer not null default 0, -- fields that did not fit their column
    kafka_topic     text not null,
    kafka_partition integer not null,
    kafka_offset    bigint not null,
    kafka_ts        timestamptz,
    _batch_id       bigint not null,
    _ingested_at    timestamptz not null default clock_timestamp()
);
create index if not exists events_ingested_at on {s}.events (_ingested_at);
create table if not exists {s}.schema_drift (
    field_path      text not null,
    change          text not null check (change in ('new_field', 'type_change', 'missing_field')),
    expected_type   text,
    observed_types  text[] not null,
    first_seen      timestamptz not null,
    app_version     text not null,  -- of the first event that showed it
    last_seen       timestamptz not null,
    events          bigint not null,  -- events seen with it (a replayed batch counts again)
    type_conflicts  bigint not null default 0,
    schema_version  integer not null,
    schema_sha256   text not null,
    detected_at     timestamptz not null default clock_timestamp(),
    notified_at     timestamptz,
    primary key (field_path, change)
);
create table if not exists {s}.type_conflicts (
    event_id        text not null,
    field_path      text not null,
    column_name     text not null,
    expected_type   text not null,
    observed_type   text not null,
    reason          text not null,
    app_version     text not null,
    detected_at     timestamptz not null default clock_timestamp(),
    primary key (event_id, field_path)
);
create table if not exists {s}.rejected (
    kafka_topic     text not null,
    kafka_partition integer not null,
    kafka_offset    bigint not null,
    reason          text not null,
    raw             text not null,
    _batch_id       bigint not null,
    _ingested_at    timestamptz not null default clock_timestamp(),
    primary key (kafka_topic, kafka_partition, kafka_offset)
);
"""

STAGE_COLUMNS = ("event_id", "device_id", "user_id", "event_name", "event_ts", "app_version", "payload",
                 "type_conflicts", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_ts", "_batch_id")


def ensure_tables(conn: psycopg.Connection, raw_schema: str = RAW_SCHEMA) -> None:
    conn.execute(sql.SQL(DDL).format(s=sql.Identifier(raw_schema)))


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    received: int
    inserted: int
    duplicates: int  # events already in the table, or twice in the batch
    rejected: int
    new_conflicts: int
    drift_rows: int  # (field, change) rows the batch showed

    def as_dict(self) -> dict:
        return dict(vars(self))


def load_batch(conn: psycopg.Connection, batch_id: int, events: Sequence[Examined], rejected: Sequence[Rejected],
               schema: ExpectedSchema, raw_schema: str = RAW_SCHEMA) -> BatchResult:
    """Write one batch in one transaction; a replay of it changes nothing but counters of sightings."""
    s = sql.Identifier(raw_schema)
    with conn.transaction():
        inserted = _insert_events(conn, s, batch_id, events)
        drift = summarise_drift(events)
        _upsert_drift(conn, s, drift, schema)
        new_conflicts = _insert_conflicts(conn, s, events)
        _insert_rejected(conn, s, batch_id, rejected)
    return BatchResult(batch_id, len(events) + len(rejected), inserted, len(events) - inserted, len(rejected),
                       new_conflicts, len(drift))


def _insert_events(conn: psycopg.Connection, s: sql.Identifier, batch_id: int, events: Sequence[Examined]) -> int:
    if not events:
        return 0
    cols = sql.SQL(", ").join(map(sql.Identifier, STAGE_COLUMNS))
    # The stage has the target's columns; it lives as long as the connection, empty between batches.
    conn.execute(sql.SQL("create temporary table if not exists mobile_events_stage on commit delete rows as "
                         "select {cols} from {s}.events with no data").format(cols=cols, s=s))
    with conn.cursor().copy(sql.SQL("copy mobile_events_stage ({cols}) from stdin").format(cols=cols)) as copy:
        for e in events:
            c = e.columns
            # The payload travels as received: COPY's text form is jsonb's input, parsed once.
            copy.write_row((e.event_id, c.get("device_id"), c.get("user_id"), c.get("event_name"), c.get("event_ts"),
                            c.get("app_version"), e.payload_text, len(e.conflicts), e.at.topic,
                            e.at.partition, e.at.offset, e.at.timestamp, batch_id))
    # The first copy by Kafka position stands, in the batch as across batches.
    cur = conn.execute(sql.SQL(
        "insert into {s}.events ({cols}) select distinct on (event_id) {cols} from mobile_events_stage "
        "order by event_id, kafka_partition, kafka_offset on conflict (event_id) do nothing").format(s=s, cols=cols))
    return cur.rowcount


def _upsert_drift(conn: psycopg.Connection, s: sql.Identifier, drift, schema: ExpectedSchema) -> None:
    if not drift:
        return
    now = datetime.now(UTC)
    conn.cursor().executemany(sql.SQL("""
        insert into {s}.schema_drift as d (field_path, change, expected_type, observed_types, first_seen,
                                           app_version, last_seen, events, schema_version, schema_sha256)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (field_path, change) do update set
            observed_types = array(select distinct t from unnest(d.observed_types || excluded.observed_types) t
                                   order by t),
            app_version = case when excluded.first_seen < d.first_seen then excluded.app_version
                               else d.app_version end,
            first_seen = least(d.first_seen, excluded.first_seen),
            last_seen = greatest(d.last_seen, excluded.last_seen),
            events = d.events + excluded.events
        """).format(s=s), [
        (r.path, r.change, r.expected_type, sorted(r.observed_types), r.first_seen or now, r.app_version,
         r.last_seen or now, r.events, schema.schema_version, schema.sha256) for r in drift])


def _insert_conflicts(conn: psycopg.Connection, s: sql.Identifier, events: Sequence[Examined]) -> int:
    rows = [(e.event_id, c.path, c.column, c.expected_type, c.observed_type, c.reason, e.app_version)
            for e in events for c in e.conflicts]
    if not rows:
        return 0
    new_by_path: Counter[str] = Counter()
    with conn.cursor() as cur:
        cur.executemany(sql.SQL(
            "insert into {s}.type_conflicts (event_id, field_path, column_name, expected_type, observed_type, "
            "reason, app_version) values (%s, %s, %s, %s, %s, %s, %s) "
            "on conflict (event_id, field_path) do nothing returning field_path").format(s=s),
            rows, returning=True)
        while True:
            if (row := cur.fetchone()) is not None:
                new_by_path[row[0]] += 1
            if not cur.nextset():
                break
    for path, count in new_by_path.items():
        conn.execute(sql.SQL("update {s}.schema_drift set type_conflicts = type_conflicts + %s "
                             "where field_path = %s and change = 'type_change'").format(s=s), (count, path))
    return sum(new_by_path.values())


def _insert_rejected(conn: psycopg.Connection, s: sql.Identifier, batch_id: int, rejected: Sequence[Rejected]) -> None:
    if rejected:
        conn.cursor().executemany(sql.SQL(
            "insert into {s}.rejected (kafka_topic, kafka_partition, kafka_offset, reason, raw, _batch_id) "
            "values (%s, %s, %s, %s, %s, %s) on conflict do nothing").format(s=s),
            [(r.at.topic, r.at.partition, r.at.offset, r.reason, r.raw, batch_id) for r in rejected])

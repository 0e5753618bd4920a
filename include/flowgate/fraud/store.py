"""The fraud engine's store: ``fraud.decisions``, one row per transaction id, ever.

Exactly once comes from here. Spark replays a micro-batch after a crash (the checkpoint
knows which offsets were committed, not which rows reached PostgreSQL), so every write is
``ON CONFLICT (transaction_id) DO NOTHING``: the first decision stands and a replay adds
nothing. The decisions then sent to Kafka are read back from this table, so a replayed
batch re-sends the same decision, never a second opinion.

The table holds tokens, BIN and last four only — what PCI-DSS allows — and doubles as
the per-card history the velocity features read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pandas as pd
import psycopg

DDL = """
create schema if not exists fraud;
create table if not exists fraud.decisions (
    transaction_id   uuid primary key,
    token            text,                 -- null when decided without the tokenizer
    card_bin         text,
    card_last4       text,
    amount           numeric(14, 2) not null,
    currency         char(3) not null,
    merchant_id      text not null,
    mcc              text not null,
    event_time       timestamptz not null,
    produced_at      timestamptz not null, -- the gateway's produce time (Kafka CreateTime)
    decision         text not null check (decision in ('approve', 'review', 'decline')),
    score            double precision,     -- null when unscored
    reason_codes     text[] not null,
    model_version    text,
    scored           boolean not null,
    breaker_state    text not null,
    source_partition integer not null,
    source_offset    bigint not null,
    batch_id         bigint not null,
    decided_at       timestamptz not null default clock_timestamp()
);
create index if not exists decisions_card_history on fraud.decisions (token, event_time)
    where token is not null;
"""

COLUMNS = (
    "transaction_id", "token", "card_bin", "card_last4", "amount", "currency", "merchant_id",
    "mcc", "event_time", "produced_at", "decision", "score", "reason_codes", "model_version",
    "scored", "breaker_state", "source_partition", "source_offset", "batch_id",
)

# What the decisions topic carries, read back from the table (see the module docstring).
PUBLISHED_COLUMNS = (
    "transaction_id", "decision", "score", "reason_codes", "model_version", "scored",
    "amount", "currency", "token", "card_bin", "card_last4", "produced_at", "decided_at",
)


@dataclass(frozen=True)
class DecisionRow:
    transaction_id: str
    token: str | None
    card_bin: str | None
    card_last4: str | None
    amount: Decimal
    currency: str
    merchant_id: str
    mcc: str
    event_time: datetime
    produced_at: datetime
    decision: str
    score: float | None
    reason_codes: list[str]
    model_version: str | None
    scored: bool
    breaker_state: str
    source_partition: int
    source_offset: int
    batch_id: int

    def values(self) -> tuple:
        return tuple(getattr(self, c) for c in COLUMNS)

    def published(self, decided_at: datetime) -> dict:
        """This decision as the decisions topic carries it (see PUBLISHED_COLUMNS)."""
        return {c: decided_at if c == "decided_at" else getattr(self, c) for c in PUBLISHED_COLUMNS}


def ensure_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(DDL)


class DecisionStore:
    """One connection held for the stream's life: a micro-batch cannot afford a connect."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True, application_name="flowgate-fraud-stream")
        ensure_schema(self.conn)

    def card_history(self, tokens: Sequence[str], since: datetime) -> pd.DataFrame:
        """Earlier decided payments of these cards since ``since`` (the velocity windows)."""
        rows = self.conn.execute(
            "select transaction_id::text, token, event_time, amount::float8, merchant_id "
            "from fraud.decisions where token = any(%s) and event_time >= %s",
            (list(tokens), since),
        ).fetchall()
        return pd.DataFrame(rows, columns=["transaction_id", "token", "event_time", "amount", "merchant_id"])

    def record(self, rows: Sequence[DecisionRow]) -> dict[str, datetime]:
        """Insert the decisions not taken before: {transaction id: decided_at} of those
        new now (a replayed id is not in it; its first decision stands)."""
        if not rows:
            return {}
        with self.conn.transaction():
            self.conn.execute(
                "create temp table if not exists incoming (like fraud.decisions including defaults) "
                "on commit delete rows"
            )
            with self.conn.cursor().copy(f"copy incoming ({', '.join(COLUMNS)}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row.values())
            inserted = self.conn.execute(
                f"insert into fraud.decisions ({', '.join(COLUMNS)}) "
                f"select distinct on (transaction_id) {', '.join(COLUMNS)} from incoming "
                "order by transaction_id, source_partition, source_offset "
                "on conflict (transaction_id) do nothing returning transaction_id::text, decided_at"
            ).fetchall()
        return dict(inserted)

    def decided(self, transaction_ids: Sequence[str]) -> list[dict]:
        """The stored decisions of these ids, in the shape the decisions topic carries."""
        if not transaction_ids:
            return []
        cursor = self.conn.execute(
            f"select {', '.join(PUBLISHED_COLUMNS)} from fraud.decisions where transaction_id = any(%s::uuid[])",
            (list(transaction_ids),),
        )
        return [dict(zip(PUBLISHED_COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        self.conn.close()

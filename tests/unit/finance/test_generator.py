"""The core-banking generator without a database: deterministic, balanced, exact money."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from flowgate.finance import generator as gen
from flowgate.finance.transform import BOOKED_STATUSES

DAY = date(2026, 11, 2)
N = 5_000


@pytest.fixture(scope="module")
def rows() -> list[gen.Posting]:
    return list(gen.generate_postings(DAY, N, seed=7))


def _digest(rows) -> str:
    return hashlib.sha256(b"".join(gen.copy_text(rows))).hexdigest()


def _transactions(rows) -> dict[int, list[gen.Posting]]:
    by_txn: dict[int, list[gen.Posting]] = defaultdict(list)
    for p in rows:
        by_txn[p.transaction_id].append(p)
    return by_txn


def test_same_arguments_give_byte_identical_rows(rows):
    again = list(gen.generate_postings(DAY, N, seed=7))
    assert again == rows
    assert _digest(again) == _digest(rows)


def test_seed_and_date_change_the_rows(rows):
    assert _digest(gen.generate_postings(DAY, N, seed=8)) != _digest(rows)
    other_day = list(gen.generate_postings(DAY + timedelta(days=1), N, seed=7))
    assert {p.posting_id for p in other_day}.isdisjoint(p.posting_id for p in rows)
    assert {p.transaction_id for p in other_day}.isdisjoint(p.transaction_id for p in rows)


@pytest.mark.parametrize("count", [0, 2, 3, 4, 5, 7, 11, 100, 1_001])
def test_exactly_the_requested_number_of_postings(count):
    generated = list(gen.generate_postings(DAY, count, seed=1))
    assert len(generated) == count
    assert all(len(legs) >= 2 for legs in _transactions(generated).values())


@pytest.mark.parametrize("count", [1, -1, gen.MAX_POSTINGS_PER_DAY + 1])
def test_impossible_counts_are_refused(count):
    with pytest.raises(ValueError, match="postings must be"):
        list(gen.generate_postings(DAY, count))


def test_every_transaction_is_balanced_in_one_currency(rows):
    for txn, legs in _transactions(rows).items():
        assert len(legs) >= 2, txn
        assert len({p.currency for p in legs}) == 1, txn
        debit = sum(p.amount for p in legs if p.side == "debit")
        credit = sum(p.amount for p in legs if p.side == "credit")
        assert debit == credit, (txn, debit, credit)
        assert len({p.status for p in legs}) == 1, txn  # a transaction is booked as a whole


def test_amounts_are_positive_decimals_with_two_places(rows):
    for p in rows:
        assert type(p.amount) is Decimal
        assert p.amount.as_tuple().exponent == -2
        assert p.amount > 0


def test_ids_unique_and_derived_from_the_date(rows):
    base = DAY.toordinal() * 10**7
    assert [p.posting_id for p in rows] == list(range(base + 1, base + N + 1))
    txns = sorted(_transactions(rows))
    assert txns == list(range(base + 1, base + len(txns) + 1))
    # a transaction's legs are consecutive postings
    for legs in _transactions(rows).values():
        ids = [p.posting_id for p in legs]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_postings_follow_their_accounts(rows):
    accounts = gen.reference_data().account_by_id
    for p in rows:
        account = accounts[p.account_id]
        assert (p.gl_code, p.currency) == (account.gl_code, account.currency)
        assert account.status == "active"
    assert {p.gl_code for p in rows} == set(gen.GL_CODES)
    assert {p.currency for p in rows} == set(gen.CURRENCIES)


def test_posted_within_the_business_date_in_posting_order(rows):
    start = datetime(2026, 11, 2, tzinfo=UTC)
    times = [p.posted_at for p in rows]
    assert times == sorted(times)
    assert start <= times[0] and times[-1] < start + timedelta(days=1)
    assert all(p.value_date == DAY for p in rows)


def test_reversals_mirror_an_earlier_original_of_the_same_day(rows):
    by_id = {p.posting_id: p for p in rows}
    txns = _transactions(rows)
    reversals = {t: legs for t, legs in txns.items() if legs[0].reversal_of is not None}
    assert len(reversals) >= 5, "the sample should exercise reversals"
    reversed_originals = set()
    for txn, legs in reversals.items():
        originals = [by_id[p.reversal_of] for p in legs]
        assert len({o.transaction_id for o in originals}) == 1
        original_txn = originals[0].transaction_id
        assert original_txn < txn
        assert len(txns[original_txn]) == len(legs)  # every leg mirrored, none left out
        for leg, original in zip(legs, originals):
            assert leg.status == "booked" and original.status == "reversed"
            assert (leg.account_id, leg.gl_code, leg.currency, leg.amount) == (
                original.account_id, original.gl_code, original.currency, original.amount)
            assert {leg.side, original.side} == {"debit", "credit"}
        reversed_originals.add(original_txn)
    # every transaction marked reversed has exactly one reversal
    marked = {t for t, legs in txns.items() if legs[0].status == "reversed"}
    assert marked == reversed_originals
    assert len(reversed_originals) == len(reversals)


def test_some_transactions_are_pending_and_never_reversed(rows):
    pending = [p for p in rows if p.status == "pending"]
    assert pending
    assert not {p.posting_id for p in pending} & {p.reversal_of for p in rows}


def test_control_totals_rule_is_the_reconciliations_rule():
    # The reconciliation gate counts the same statuses the core publishes totals for.
    assert set(gen.CONTROL_TOTAL_STATUSES) == set(BOOKED_STATUSES)
    assert "pending" not in gen.CONTROL_TOTAL_STATUSES


def test_expected_control_totals_leave_out_pending(rows):
    totals = gen.expected_control_totals(rows)
    assert sum(c for c, _, _ in totals.values()) == sum(p.status != "pending" for p in rows)
    assert sum(d for _, d, _ in totals.values()) == sum(c for _, _, c in totals.values())


def test_half_even_rounding_of_derived_amounts():
    assert gen.percentage(Decimal("5.00"), Decimal("1.5")) == Decimal("0.08")  # 0.075 -> 0.08
    assert gen.percentage(Decimal("8.50"), Decimal("1.5")) == Decimal("0.13")  # 0.1275 -> 0.13
    assert gen.percentage(Decimal("1.00"), Decimal("12.5")) == Decimal("0.12")  # 0.125 -> 0.12
    assert gen.percentage(Decimal("3.00"), Decimal("12.5")) == Decimal("0.38")  # 0.375 -> 0.38
    assert gen.cents(1234) == Decimal("12.34") and gen.cents(1234).as_tuple().exponent == -2


def test_reference_set_is_fixed_and_complete():
    ref = gen.reference_data()
    assert len(ref.customers) == gen.CUSTOMERS + 1  # + the house customer
    assert len(ref.accounts) == gen.CUSTOMER_ACCOUNTS + len(gen.HOUSE_GLS) * len(gen.CURRENCIES)
    assert len({a.account_id for a in ref.accounts}) == len(ref.accounts)
    customer_ids = {c.customer_id for c in ref.customers}
    assert all(a.customer_id in customer_ids for a in ref.accounts)
    assert {a.product for a in ref.accounts} == {"current", "savings", "loan", "card", "internal"}
    assert {a.gl_code for a in ref.accounts if a.product == "internal"} == set(gen.HOUSE_GLS)
    gen.reference_data.cache_clear()
    assert gen.reference_data() == ref  # rebuilt from scratch: the same rows


def test_published_at_depends_only_on_the_date():
    assert gen.published_at(DAY) == datetime(2026, 11, 3, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("delta, error", [(1.5, TypeError), (Decimal("0.001"), ValueError)])
def test_tamper_refuses_non_cent_deltas_before_touching_the_database(delta, error):
    with pytest.raises(error):
        gen.tamper_control_total(None, DAY, gen.GL_FEES, "EUR", delta)

"""A deterministic core-banking source for the finance flow: customers, accounts, a
business date's double-entry postings and the control totals the core publishes.

Why deterministic: the SOX gate is tested by reconciling to the cent, and a failing
reconciliation must be reproducible. The same (business date, postings, seed) always
gives byte-identical rows, so a test, a bench and a demo all see the same books.

The rules (also in ``source_schema.sql``):

- Ids: ``posting_id = date.toordinal() * 10**7 + n`` (n = 1..postings, in load order) and
  ``transaction_id = date.toordinal() * 10**7 + t`` (t = 1.. per transaction), so ids never
  collide across dates and a day holds at most 9,999,999 postings.
- Every transaction has two or more legs in one currency; its debits equal its credits
  exactly. Derived amounts (card fees, loan interest) are rounded to the cent with
  ``ROUND_HALF_EVEN``; the remainder goes to the other leg, so nothing is lost.
- Reversals: a reversal transaction mirrors an earlier transaction of the same date
  (same accounts, GL codes, currency and amounts; opposite sides; status 'booked';
  ``reversal_of`` = the mirrored leg's posting id). The original's legs have status
  'reversed'. Pending transactions (status 'pending') are never reversed.
- Control totals count postings with status in :data:`CONTROL_TOTAL_STATUSES`
  ('booked', 'reversed'): pending postings are not part of the day's books.
- Customers and accounts are one fixed reference set (independent of ``seed``), created
  once with ``ON CONFLICT DO NOTHING``; the bank's own GL accounts (cash, fees, interest)
  are "house" accounts of a house customer.

Re-seeding a date replaces its postings and control totals in one transaction, so it is
idempotent; rows go in with COPY, and the totals are computed by SQL from the loaded rows.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import psycopg

# --- the chart of accounts and the reference set -------------------------------------

GL_CASH = "1000-CASH"
GL_LOANS = "1200-LOANS"
GL_CARDS = "1300-CARDS"
GL_DEPOSITS = "2000-DEPOSITS"
GL_FEES = "4000-FEES"
GL_INTEREST = "5000-INTEREST"
GL_CODES = (GL_CASH, GL_LOANS, GL_CARDS, GL_DEPOSITS, GL_FEES, GL_INTEREST)

PRODUCT_GL = {"current": GL_DEPOSITS, "savings": GL_DEPOSITS, "loan": GL_LOANS, "card": GL_CARDS}
HOUSE_GLS = (GL_CASH, GL_FEES, GL_INTEREST)  # the bank's own side of customer business
CURRENCIES = ("EUR", "USD", "GBP", "CHF")

# Postings that are part of the day's books and therefore of the control totals.
CONTROL_TOTAL_STATUSES = ("booked", "reversed")

CUSTOMERS = 2_000
CUSTOMER_ACCOUNTS = 5_000
FIRST_ACCOUNT_ID = 100_001
HOUSE_CUSTOMER_ID = 999_999
FIRST_HOUSE_ACCOUNT_ID = 900_001
REFERENCE_SEED = 20_240_101  # fixed: the reference set never depends on a seed_finance seed

ID_SPAN = 10**7  # posting/transaction ids per business date
MAX_POSTINGS_PER_DAY = ID_SPAN - 1
CENT = Decimal("0.01")

_COUNTRIES = {"DE": ("EUR", 20), "FR": ("EUR", 12), "NL": ("EUR", 8), "ES": ("EUR", 6), "IT": ("EUR", 6),
              "US": ("USD", 18), "GB": ("GBP", 15), "CH": ("CHF", 15)}
_SEGMENTS = {"retail": 80, "business": 15, "private": 5}
_EXTRA_PRODUCTS = {"current": 10, "savings": 40, "loan": 20, "card": 30}
_FIRST_NAMES = ("Anna", "Ben", "Chloe", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
                "Katrin", "Luca", "Maya", "Noah", "Olivia", "Paul", "Rosa", "Samuel", "Tara", "Yannick")
_LAST_NAMES = ("Meier", "Dubois", "Jansen", "Garcia", "Rossi", "Smith", "Taylor", "Keller", "Novak",
               "Brown", "Schmid", "Martin", "Visser", "Lopez", "Bianchi", "Walker", "Huber", "Moreau")
_COMPANY_KINDS = ("Logistics", "Trading", "Bakery", "Software", "Consulting", "Design", "Foods", "Motors")


class Customer(NamedTuple):
    customer_id: int
    full_name: str
    segment: str
    country: str
    created_at: datetime


class Account(NamedTuple):
    account_id: int
    customer_id: int
    product: str
    gl_code: str
    currency: str
    opened_on: date
    status: str


@dataclass(frozen=True)
class ReferenceData:
    """The fixed customers and accounts, plus the account pools transactions draw from."""

    customers: tuple[Customer, ...]
    accounts: tuple[Account, ...]
    pools: dict[tuple[str, str], tuple[int, ...]]  # (pool, currency) -> active account ids
    house: dict[tuple[str, str], int]  # (gl_code, currency) -> the bank's own account

    @property
    def account_by_id(self) -> dict[int, Account]:
        return {a.account_id: a for a in self.accounts}


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    """A key of ``weights`` drawn with those weights (``random.choices``, cached cumulative weights)."""
    keys, cumulative = _cumulative(tuple(weights.items()))
    return rng.choices(keys, cum_weights=cumulative)[0]


@lru_cache(maxsize=None)
def _cumulative(items: tuple[tuple[str, int], ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    return tuple(k for k, _ in items), tuple(itertools.accumulate(w for _, w in items))


def _build_customers(rng: random.Random) -> list[Customer]:
    countries = {country: weight for country, (_, weight) in _COUNTRIES.items()}
    customers = []
    for customer_id in range(1, CUSTOMERS + 1):
        segment = _weighted(rng, _SEGMENTS)
        last = rng.choice(_LAST_NAMES)
        name = (f"{last} {rng.choice(_COMPANY_KINDS)} Ltd" if segment == "business"
                else f"{rng.choice(_FIRST_NAMES)} {last}")
        created = datetime(2012, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(4000),
                                                                seconds=rng.randrange(86_400))
        customers.append(Customer(customer_id, name, segment, _weighted(rng, countries), created))
    return customers


def _build_accounts(rng: random.Random, customers: list[Customer]) -> list[Account]:
    """One current account per customer in its home currency, then extra products."""
    accounts = []
    for n in range(CUSTOMER_ACCOUNTS):
        if n < len(customers):
            owner, product, currency = customers[n], "current", _COUNTRIES[customers[n].country][0]
        else:
            owner, product = rng.choice(customers), _weighted(rng, _EXTRA_PRODUCTS)
            home = _COUNTRIES[owner.country][0]
            currency = home if rng.random() < 0.9 else rng.choice(CURRENCIES)
        opened = owner.created_at.date() + timedelta(days=rng.randrange(365))
        status = "active" if rng.random() < 0.97 else "dormant"
        accounts.append(Account(FIRST_ACCOUNT_ID + n, owner.customer_id, product, PRODUCT_GL[product],
                                currency, opened, status))
    return accounts


def _house_accounts() -> list[Account]:
    """The bank's own GL accounts, one per house GL and currency.

    They are 'internal' accounts of the house customer, so fee, cash and interest
    movements never show up in a customer product's summary; the GL code says what
    each one is.
    """
    pairs = [(gl, cur) for gl in HOUSE_GLS for cur in CURRENCIES]
    return [Account(FIRST_HOUSE_ACCOUNT_ID + i, HOUSE_CUSTOMER_ID, "internal", gl, cur, date(2010, 1, 1), "active")
            for i, (gl, cur) in enumerate(pairs)]


def _build_pools(customers: list[Customer], accounts: list[Account]) -> dict[tuple[str, str], tuple[int, ...]]:
    segment = {c.customer_id: c.segment for c in customers}
    pools: dict[tuple[str, str], list[int]] = {}
    for a in accounts:
        if a.status != "active":
            continue
        pools.setdefault((a.product, a.currency), []).append(a.account_id)
        if a.product == "current" and segment[a.customer_id] == "business":
            pools.setdefault(("business_current", a.currency), []).append(a.account_id)
    needed = [(p, c) for p in ("current", "savings", "loan", "card", "business_current") for c in CURRENCIES]
    missing = [key for key in needed if len(pools.get(key, ())) < 2]
    if missing:  # only possible if the constants above change
        raise RuntimeError(f"reference set has too few active accounts for {missing}")
    return {key: tuple(ids) for key, ids in pools.items()}


@lru_cache(maxsize=1)
def reference_data() -> ReferenceData:
    """The fixed reference set (built once per process; always the same rows)."""
    rng = random.Random(REFERENCE_SEED)
    customers = _build_customers(rng)
    accounts = _build_accounts(rng, customers)
    house = _house_accounts()
    house_customer = Customer(HOUSE_CUSTOMER_ID, "FlowGate Bank (house)", "business", "CH",
                              datetime(2010, 1, 1, tzinfo=UTC))
    return ReferenceData(
        customers=(*customers, house_customer),
        accounts=(*accounts, *house),
        pools=_build_pools(customers, accounts),
        house={(a.gl_code, a.currency): a.account_id for a in house},
    )


# --- money ----------------------------------------------------------------------------

def cents(value: int) -> Decimal:
    """An integer number of cents as a 2-dp Decimal (money is never a float)."""
    return Decimal(value).scaleb(-2)


def percentage(amount: Decimal, percent: Decimal) -> Decimal:
    """``percent`` % of ``amount``, to the cent, rounded half to even (banker's rounding)."""
    return (amount * percent / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _random_cents(rng: random.Random, low: int, high: int) -> Decimal:
    """A random amount between ``low`` and ``high`` cents, skewed towards small amounts.

    A decade is drawn first, then a value inside it: small payments are common and
    large ones rare, as in real books, using integers only.
    """
    lo, hi = rng.choice(_decades(low, high))
    return cents(rng.randint(lo, hi))


@lru_cache(maxsize=None)
def _decades(low: int, high: int) -> tuple[tuple[int, int], ...]:
    """[low, high] cut at powers of ten: (500, 200_000) -> (500, 4999), (5000, 49999), ..."""
    bounds = []
    while low <= high:
        bounds.append((low, min(high, low * 10 - 1)))
        low *= 10
    return tuple(bounds)


# --- transactions ---------------------------------------------------------------------

class Posting(NamedTuple):
    posting_id: int
    transaction_id: int
    account_id: int
    gl_code: str
    currency: str
    side: str
    amount: Decimal
    value_date: date
    posted_at: datetime
    status: str
    reversal_of: int | None


POSTING_COLUMNS = Posting._fields

Leg = tuple[int, str, str, Decimal]  # account_id, gl_code, side, amount

_CURRENCY_WEIGHTS = {"EUR": 50, "USD": 20, "GBP": 15, "CHF": 15}
_KIND_WEIGHTS = {"card_purchase": 35, "transfer": 25, "cash_withdrawal": 10, "cash_deposit": 8,
                 "loan_repayment": 8, "account_fee": 5, "interest_payment": 4, "payroll": 5}
_CARD_FEE_PERCENT = Decimal("1.5")
_INTEREST_SHARE_PERCENTS = (Decimal("12.5"), Decimal("17.5"), Decimal("22.5"))  # of a loan instalment
_ACCOUNT_FEES = (cents(250), cents(500), cents(1200), cents(2500))
REVERSAL_RATE = 0.01  # share of booked transactions reversed later the same day
PENDING_RATE = 0.005  # share of transactions still pending at end of day
_REVERSAL_DELAY = 500  # a reversal comes at most this many transactions after its original


def _pick(rng: random.Random, ref: ReferenceData, pool: str, currency: str) -> tuple[int, str]:
    account_id = rng.choice(ref.pools[(pool, currency)])
    return account_id, PRODUCT_GL["current" if pool == "business_current" else pool]


def _two_distinct(rng: random.Random, ref: ReferenceData, pool: str, currency: str) -> tuple[int, int]:
    ids = ref.pools[(pool, currency)]
    first, second = rng.sample(range(len(ids)), 2)
    return ids[first], ids[second]


def _legs(rng: random.Random, ref: ReferenceData, kind: str, currency: str, payees: int = 2) -> list[Leg]:
    """The legs of one transaction of ``kind``; debits always equal credits."""
    def house(gl_code: str) -> int:
        return ref.house[(gl_code, currency)]

    if kind == "card_purchase":  # card holder pays a merchant; the bank keeps a fee
        amount = _random_cents(rng, 500, 200_000)
        fee = percentage(amount, _CARD_FEE_PERCENT)
        card, merchant = _pick(rng, ref, "card", currency), _pick(rng, ref, "business_current", currency)
        return [(*card, "debit", amount), (*merchant, "credit", amount - fee), (house(GL_FEES), GL_FEES, "credit", fee)]
    if kind == "transfer":
        payer, payee = _two_distinct(rng, ref, "current", currency)
        amount = _random_cents(rng, 100, 5_000_000)
        return [(payer, GL_DEPOSITS, "debit", amount), (payee, GL_DEPOSITS, "credit", amount)]
    if kind in ("cash_withdrawal", "cash_deposit"):
        account, gl = _pick(rng, ref, "current", currency)
        amount = cents(rng.randint(2, 500) * 1_000)
        customer_side, cash_side = ("debit", "credit") if kind == "cash_withdrawal" else ("credit", "debit")
        return [(account, gl, customer_side, amount), (house(GL_CASH), GL_CASH, cash_side, amount)]
    if kind == "loan_repayment":  # an instalment splits into principal and interest
        amount = _random_cents(rng, 10_000, 500_000)
        interest = percentage(amount, rng.choice(_INTEREST_SHARE_PERCENTS))
        return [(*_pick(rng, ref, "current", currency), "debit", amount),
                (*_pick(rng, ref, "loan", currency), "credit", amount - interest),
                (house(GL_INTEREST), GL_INTEREST, "credit", interest)]
    if kind == "account_fee":
        amount = rng.choice(_ACCOUNT_FEES)
        return [(*_pick(rng, ref, "current", currency), "debit", amount), (house(GL_FEES), GL_FEES, "credit", amount)]
    if kind == "interest_payment":
        amount = _random_cents(rng, 1, 50_000)
        return [(house(GL_INTEREST), GL_INTEREST, "debit", amount),
                (*_pick(rng, ref, "savings", currency), "credit", amount)]
    if kind == "payroll":  # one employer debit, several salary credits
        salaries = [cents(rng.randint(150_000, 900_000)) for _ in range(payees)]
        employer = _pick(rng, ref, "business_current", currency)
        credits = [(*_pick(rng, ref, "current", currency), "credit", s) for s in salaries]
        return [(*employer, "debit", sum(salaries, Decimal("0.00"))), *credits]
    raise ValueError(f"unknown transaction kind {kind!r}")


def _fits(cost: int, free: int) -> bool:
    """True if ``cost`` postings fit in ``free`` and never leave exactly one (no 1-leg transaction)."""
    return cost == free or free - cost >= 2


def _draw_transaction(rng: random.Random, ref: ReferenceData, free: int) -> tuple[str, list[Leg]]:
    """A random transaction that fits the ``free`` posting budget; returns (currency, legs)."""
    currency = _weighted(rng, _CURRENCY_WEIGHTS)
    kind = _weighted(rng, _KIND_WEIGHTS)
    payees = rng.randint(2, 5) if kind == "payroll" else 0
    natural = {"card_purchase": 3, "loan_repayment": 3, "payroll": payees + 1}.get(kind, 2)
    if not _fits(natural, free):
        kind = "card_purchase" if free == 3 else "transfer"
    return currency, _legs(rng, ref, kind, currency, payees)


def _check_postings(postings: int) -> None:
    if not 0 <= postings <= MAX_POSTINGS_PER_DAY or postings == 1:
        raise ValueError(f"postings must be 0 or 2..{MAX_POSTINGS_PER_DAY} (a transaction has ≥ 2 legs), "
                         f"got {postings}")


def _mirror(original: list[Posting]) -> list[Leg]:
    """The legs that undo ``original``: same accounts and amounts, opposite sides."""
    return [(p.account_id, p.gl_code, "credit" if p.side == "debit" else "debit", p.amount) for p in original]


def id_base(business_date: date) -> int:
    """Ids of a date start above this base: unique across dates, readable (date in the high digits)."""
    return business_date.toordinal() * ID_SPAN


def _day_rng(business_date: date, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random: stable across processes.
    return random.Random(f"flowgate.finance:{seed}:{business_date.isoformat()}")


def generate_postings(business_date: date, postings: int, seed: int = 42) -> Iterator[Posting]:
    """The business date's postings, in posting_id order; a pure function of its arguments.

    Transactions are drawn until exactly ``postings`` legs exist. A transaction chosen for
    reversal reserves the legs of its future mirror, which follows within
    ``_REVERSAL_DELAY`` transactions (or at the end of the day); posted_at spreads the
    postings evenly over the day in posting order, so a reversal is always later.
    """
    _check_postings(postings)
    rng, ref, base = _day_rng(business_date, seed), reference_data(), id_base(business_date)
    day_start = datetime.combine(business_date, time(), tzinfo=UTC)
    step = timedelta(microseconds=86_400_000_000 // max(postings, 1))
    emitted = reserved = txn_no = 0
    due: list[tuple[int, int]] = []  # heap of (transaction number it is due at, original's number)
    to_reverse: dict[int, list[Posting]] = {}
    while emitted < postings:
        txn_no += 1
        free = postings - emitted - reserved
        if due and (due[0][0] <= txn_no or free == 0):
            original = to_reverse.pop(heapq.heappop(due)[1])
            reserved -= len(original)
            legs, mirrored = _mirror(original), [p.posting_id for p in original]
            currency, status = original[0].currency, "booked"
        else:
            currency, legs = _draw_transaction(rng, ref, free)
            status = "pending" if rng.random() < PENDING_RATE else "booked"
            if status == "booked" and rng.random() < REVERSAL_RATE and _fits(2 * len(legs), free):
                status = "reversed"
            mirrored = [None] * len(legs)
        rows = []
        for (account_id, gl_code, side, amount), reversal_of in zip(legs, mirrored):
            rows.append(Posting(base + emitted + 1, base + txn_no, account_id, gl_code, currency, side, amount,
                                business_date, day_start + step * emitted, status, reversal_of))
            emitted += 1
        if status == "reversed":
            reserved += len(rows)
            to_reverse[txn_no] = rows
            heapq.heappush(due, (txn_no + rng.randint(1, _REVERSAL_DELAY), txn_no))
        yield from rows


def expected_control_totals(rows: Iterable[Posting]) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
    """(gl_code, currency) -> (count, debit, credit) by the control-total rule, in Python.

    A second, independent implementation of the SQL in :func:`seed_finance`, for tests.
    """
    totals: dict[tuple[str, str], tuple[int, Decimal, Decimal]] = {}
    for p in rows:
        if p.status not in CONTROL_TOTAL_STATUSES:
            continue
        count, debit, credit = totals.get((p.gl_code, p.currency), (0, Decimal("0.00"), Decimal("0.00")))
        if p.side == "debit":
            debit += p.amount
        else:
            credit += p.amount
        totals[(p.gl_code, p.currency)] = (count + 1, debit, credit)
    return totals


# --- COPY -----------------------------------------------------------------------------

_NULL = "\\N"


def copy_text(rows: Iterable[Posting], batch: int = 20_000) -> Iterator[bytes]:
    """Rows in PostgreSQL COPY text format, in batches (none of our values needs escaping)."""
    lines: list[str] = []
    for p in rows:
        reversal_of = _NULL if p.reversal_of is None else str(p.reversal_of)
        lines.append(f"{p.posting_id}\t{p.transaction_id}\t{p.account_id}\t{p.gl_code}\t{p.currency}\t{p.side}\t"
                     f"{p.amount}\t{p.value_date.isoformat()}\t{p.posted_at.isoformat(timespec='microseconds')}\t"
                     f"{p.status}\t{reversal_of}\n")
        if len(lines) >= batch:
            yield "".join(lines).encode()
            lines.clear()
    if lines:
        yield "".join(lines).encode()


# --- the database ---------------------------------------------------------------------

class SeedError(RuntimeError):
    """The core-banking source is not what the generator expects; nothing was changed."""


@dataclass(frozen=True)
class SeedSummary:
    """What one seed left in the source for its date (read back from the database)."""

    business_date: date
    seed: int
    postings: int
    transactions: int
    booked: int
    reversed: int
    pending: int
    reversal_transactions: int
    control_total_rows: int
    control_posting_count: int
    debit_total: Decimal  # over the control-total statuses; equals credit_total
    credit_total: Decimal


@contextmanager
def _connection(conn_or_dsn: psycopg.Connection | str) -> Iterator[psycopg.Connection]:
    """Use the caller's connection as is, or open (and close) one for a DSN."""
    if isinstance(conn_or_dsn, psycopg.Connection):
        yield conn_or_dsn
        return
    with psycopg.connect(conn_or_dsn, autocommit=True) as conn:
        yield conn


def source_schema_sql() -> str:
    return resources.files("flowgate.finance").joinpath("source_schema.sql").read_text()


def ensure_source_schema(conn: psycopg.Connection) -> None:
    """Apply ``source_schema.sql``; serialized so that concurrent seeds never race on DDL."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('flowgate.finance.source_schema'))")
        conn.execute(source_schema_sql())


def ensure_reference_data(conn: psycopg.Connection) -> None:
    """Insert the fixed customers and accounts if missing, then check the accounts match.

    Postings carry their account's GL code and currency, so accounts that differ from
    the reference set (an older generator's, or hand-edited) would make inconsistent
    books: that is an error, not something to paper over.
    """
    ref = reference_data()
    expected = {a.account_id: (a.customer_id, a.product, a.gl_code, a.currency) for a in ref.accounts}
    with conn.transaction():
        if _stored_accounts(conn, list(expected)) == expected:
            return
        with conn.cursor() as cur:
            cur.executemany("insert into core.customers values (%s, %s, %s, %s, %s) on conflict do nothing",
                            ref.customers)
            cur.executemany("insert into core.accounts values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                            ref.accounts)
        stored = _stored_accounts(conn, list(expected))
    wrong = sorted(i for i in expected if stored.get(i) != expected[i])
    if wrong:
        raise SeedError(f"core.accounts differs from the generator's reference set for {len(wrong)} "
                        f"accounts (first: {wrong[:5]}); reset the core_banking database")


def _stored_accounts(conn: psycopg.Connection, ids: list[int]) -> dict[int, tuple]:
    rows = conn.execute("select account_id, customer_id, product, gl_code, currency from core.accounts "
                        "where account_id = any(%s)", (ids,)).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def published_at(business_date: date) -> datetime:
    """When the core publishes a day's control totals: 00:05 UTC the next day.

    Fixed by the date (never now()), so re-seeding gives identical rows.
    """
    return datetime.combine(business_date + timedelta(days=1), time(0, 5), tzinfo=UTC)


_COPY_POSTINGS = f"copy core.postings ({', '.join(POSTING_COLUMNS)}) from stdin"

_INSERT_CONTROL_TOTALS = """
insert into core.control_totals
    (business_date, gl_code, currency, posting_count, debit_total, credit_total, published_at)
select %(d)s, gl_code, currency, count(*),
       coalesce(sum(amount) filter (where side = 'debit'), 0)::numeric(20,2),
       coalesce(sum(amount) filter (where side = 'credit'), 0)::numeric(20,2),
       %(published_at)s
from core.postings
where value_date = %(d)s and status = any(%(statuses)s)
group by gl_code, currency
"""


def replace_business_date(conn: psycopg.Connection, business_date: date, rows: Iterable[Posting]) -> None:
    """Delete the date's postings and control totals, COPY ``rows`` in, recompute totals.

    One transaction: readers see the old day or the new day, never a mix. The advisory
    lock makes two seeds of the same date queue instead of failing on duplicate ids.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('flowgate.finance.seed'), %s)",
                    (business_date.toordinal(),))
        cur.execute("delete from core.control_totals where business_date = %s", (business_date,))
        cur.execute("delete from core.postings where value_date = %s", (business_date,))
        with cur.copy(_COPY_POSTINGS) as copy:
            for chunk in copy_text(rows):
                copy.write(chunk)
        cur.execute(_INSERT_CONTROL_TOTALS, {"d": business_date, "published_at": published_at(business_date),
                                             "statuses": list(CONTROL_TOTAL_STATUSES)})


def summarize(conn: psycopg.Connection, business_date: date, seed: int) -> SeedSummary:
    """Counts and totals of the date as stored (not as generated): what the flow will see."""
    p = conn.execute(
        "select count(*), count(distinct transaction_id), "
        "count(*) filter (where status = 'booked'), count(*) filter (where status = 'reversed'), "
        "count(*) filter (where status = 'pending'), "
        "count(distinct transaction_id) filter (where reversal_of is not null) "
        "from core.postings where value_date = %s", (business_date,)).fetchone()
    t = conn.execute(
        "select count(*), coalesce(sum(posting_count), 0), coalesce(sum(debit_total), 0.00), "
        "coalesce(sum(credit_total), 0.00) from core.control_totals where business_date = %s",
        (business_date,)).fetchone()
    return SeedSummary(business_date, seed, *p, t[0], int(t[1]), t[2], t[3])


def seed_finance(conn_or_dsn: psycopg.Connection | str, business_date: date, postings: int = 100_000,
                 seed: int = 42) -> SeedSummary:
    """Make the core-banking source hold exactly this date's generated books; idempotent.

    With a DSN, the work is committed before returning. With a connection, each step runs
    in ``conn.transaction()``: committed at once on an idle connection, or part of the
    caller's transaction if one is open.
    """
    _check_postings(postings)
    with _connection(conn_or_dsn) as conn:
        ensure_source_schema(conn)
        ensure_reference_data(conn)
        replace_business_date(conn, business_date, generate_postings(business_date, postings, seed))
        summary = summarize(conn, business_date, seed)
    if summary.postings != postings or summary.debit_total != summary.credit_total:
        raise SeedError(f"seeded books do not balance: {summary}")
    return summary


def tamper_control_total(conn: psycopg.Connection | str, business_date: date, gl_code: str, currency: str,
                         delta: Decimal, side: str = "debit") -> Decimal:
    """Corrupt one published control total by ``delta`` (tests of the reconciliation gate).

    Returns the new total. Raises LookupError if the date has no such control total, so a
    test can never "pass" because it tampered with nothing.
    """
    if not isinstance(delta, Decimal):
        raise TypeError(f"delta must be a Decimal (money is never a float), got {type(delta).__name__}")
    if delta != delta.quantize(CENT):
        raise ValueError(f"delta must be whole cents, got {delta}")
    if side not in ("debit", "credit"):
        raise ValueError(f"side must be 'debit' or 'credit', got {side!r}")
    column = f"{side}_total"  # one of two fixed names, never user text
    with _connection(conn) as c, c.transaction():
        row = c.execute(f"update core.control_totals set {column} = {column} + %s "
                        f"where business_date = %s and gl_code = %s and currency = %s returning {column}",
                        (delta, business_date, gl_code, currency)).fetchone()
    if row is None:
        raise LookupError(f"no control total for {business_date} {gl_code} {currency}")
    return row[0]

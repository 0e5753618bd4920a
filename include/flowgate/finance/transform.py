"""The reporting tables of the finance mart and how one business date is built.

Every figure is a sum of NUMERIC(18,2) amounts, so it is exact; results are cast to
NUMERIC(20,2) with an explicit ROUND so a change of input scale can never leak extra
decimals into the audited tables. Rows are ordered by their keys, so the same input
always gives the same output (and the same checksum).
"""

from __future__ import annotations

from dataclasses import dataclass

# Postings that belong to the day's books: pending ones are not booked yet. The core's
# control totals follow the same rule (see source_schema.sql).
BOOKED_STATUSES = ("booked", "reversed")

MART_DDL = """
create schema if not exists reporting;
create schema if not exists audit;
create table if not exists reporting.daily_trial_balance (
    business_date date not null,
    gl_code text not null,
    currency char(3) not null,
    posting_count bigint not null,
    debit_total numeric(20,2) not null,
    credit_total numeric(20,2) not null,
    net_movement numeric(20,2) not null,
    primary key (business_date, gl_code, currency)
);
create table if not exists reporting.account_closing_balance (
    business_date date not null,
    account_id bigint not null,
    currency char(3) not null,
    closing_balance numeric(20,2) not null,
    primary key (business_date, account_id, currency)
);
create table if not exists reporting.daily_product_summary (
    business_date date not null,
    product text not null,
    currency char(3) not null,
    posting_count bigint not null,
    debit_total numeric(20,2) not null,
    credit_total numeric(20,2) not null,
    net_movement numeric(20,2) not null,
    primary key (business_date, product, currency)
);
"""


def mart_ddl_statements() -> list[str]:
    """MART_DDL one statement at a time (for warehouses whose API runs one per call)."""
    return [s.strip() for s in MART_DDL.split(";") if s.strip()]


@dataclass(frozen=True)
class ReportTable:
    name: str
    columns: tuple[str, ...]  # in the order the select returns them
    key: tuple[str, ...]
    select: str  # over the staging schema {stage}; {d} is the business date


def _booked(alias: str = "") -> str:
    statuses = ", ".join(f"'{s}'" for s in BOOKED_STATUSES)
    return f"{alias}status in ({statuses})"


def _sums(alias: str = "") -> str:
    """Count, debit, credit and net (debit - credit) of postings, exact to the cent."""
    amount, side = f"{alias}amount", f"{alias}side"
    return (
        "count(*) as posting_count, "
        f"round(coalesce(sum({amount}) filter (where {side} = 'debit'), 0), 2)::numeric(20,2) as debit_total, "
        f"round(coalesce(sum({amount}) filter (where {side} = 'credit'), 0), 2)::numeric(20,2) as credit_total, "
        f"round(coalesce(sum(case when {side} = 'debit' then {amount} else -{amount} end), 0), 2)::numeric(20,2) "
        "as net_movement"
    )


# The published trial balance; the reconciliation compares these very figures with the
# core's control totals, so what reconciles is what gets published.
TRIAL_BALANCE = ReportTable(
    "reporting.daily_trial_balance",
    ("business_date", "gl_code", "currency", "posting_count", "debit_total", "credit_total", "net_movement"),
    ("business_date", "gl_code", "currency"),
    f"select {{d}}::date, gl_code, currency, {_sums()} from {{stage}}.postings "
    f"where {_booked()} group by gl_code, currency",
)

REPORT_TABLES = (
    TRIAL_BALANCE,
    ReportTable(
        "reporting.account_closing_balance",
        ("business_date", "account_id", "currency", "closing_balance"),
        ("business_date", "account_id", "currency"),
        "select {d}::date, account_id, currency, round(movement_to_date, 2)::numeric(20,2) "
        "from {stage}.account_movements",
    ),
    ReportTable(
        "reporting.daily_product_summary",
        ("business_date", "product", "currency", "posting_count", "debit_total", "credit_total", "net_movement"),
        ("business_date", "product", "currency"),
        f"select {{d}}::date, a.product, p.currency, {_sums('p.')} "
        f"from {{stage}}.postings p join {{stage}}.accounts a using (account_id) "
        f"where {_booked('p.')} group by a.product, p.currency",
    ),
)

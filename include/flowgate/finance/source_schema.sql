-- Core banking source (database `core_banking`, schema `core`): what the nightly,
-- SOX-gated finance flow extracts and reconciles. Locally the generator
-- (flowgate/finance/generator.py) fills it; in production it is the core's own schema.
--
-- Idempotent: every statement can run again on a database that already has it
-- (the generator applies this file on every seed, under an advisory lock).
--
-- Rules the reconciliation depends on (keep flowgate/finance/transform.py in step):
--   * A posting belongs to the day's books when its status is 'booked' or 'reversed'.
--     'pending' postings are not booked yet: they are in core.postings but in no
--     control total.
--   * A reversal is a transaction of its own, dated the same day, whose legs mirror the
--     original's (same account, GL, currency and amount; opposite side) with status
--     'booked' and reversal_of = the mirrored leg's posting_id. The original's legs carry
--     status 'reversed'. Both count in the control totals, so a reversed transaction
--     shows in the gross debit and credit sums twice and nets to zero on every account.
--   * Money is NUMERIC with 2 decimals; an amount is always positive, the side says
--     which way it moves.

create schema if not exists core;

create table if not exists core.customers (
    customer_id bigint primary key,
    full_name   text        not null,
    segment     text        not null check (segment in ('retail', 'business', 'private')),
    country     char(2)     not null,
    created_at  timestamptz not null
);

create table if not exists core.accounts (
    account_id  bigint  primary key,
    customer_id bigint  not null references core.customers (customer_id),
    product     text    not null check (product in ('current', 'savings', 'loan', 'card', 'internal')),
    gl_code     text    not null,
    currency    char(3) not null,
    opened_on   date    not null,
    status      text    not null check (status in ('active', 'dormant', 'closed'))
);

create table if not exists core.postings (
    posting_id     bigint        primary key,
    transaction_id bigint        not null,
    account_id     bigint        not null references core.accounts (account_id),
    gl_code        text          not null,
    currency       char(3)       not null,
    side           text          not null check (side in ('debit', 'credit')),
    amount         numeric(18,2) not null check (amount > 0),
    value_date     date          not null,
    posted_at      timestamptz   not null,
    status         text          not null check (status in ('booked', 'reversed', 'pending')),
    -- posting_id of the leg this one mirrors; no foreign key, so a day's postings load
    -- with one COPY in any order (the generator checks the rule in its tests).
    reversal_of    bigint        null
);

-- Every read and every replace of the flow works on one value date.
create index if not exists postings_value_date_idx on core.postings (value_date);

create table if not exists core.control_totals (
    business_date date          not null,
    gl_code       text          not null,
    currency      char(3)       not null,
    posting_count bigint        not null,
    debit_total   numeric(20,2) not null,
    credit_total  numeric(20,2) not null,
    published_at  timestamptz   not null,
    primary key (business_date, gl_code, currency)
);

comment on table core.postings is
    'One leg of a double-entry transaction. Per transaction: one currency, debits = credits. '
    'A reversal mirrors its original (same value date); the original''s legs are ''reversed'', '
    'the mirror''s legs are ''booked'' with reversal_of set.';
comment on table core.control_totals is
    'End-of-day control totals the core publishes, per GL code and currency of the business '
    'date: count, debit and credit sums of its postings with status booked or reversed '
    '(pending postings are not in the day''s books).';

"""The SOX data-quality checks on a staged business date, as Great Expectations.

They run over the staged postings (one row per posting, plus the imbalance of the
transaction it belongs to) before anything is published. The frame they see is built by
``pipeline._staged_postings_frame``: ids and cents as int64, the text columns (amount
too: it is only checked for presence, and money never becomes a float) as categoricals,
``value_date`` as ``datetime64[ns]``, so that GX checks a million rows with whole-column
operations instead of Python loops.
"""

from __future__ import annotations

from datetime import date

from flowgate.common import gx_gate
from flowgate.common.currencies import ISO_4217

POSTING_STATUSES = ("booked", "reversed", "pending")
SIDES = ("debit", "credit")

# The staged postings with, per row, how far its transaction is from balancing, in cents
# (debits minus credits; 0 for a balanced transaction). Integer cents keep the check
# exact: no float ever compares money.
STAGED_POSTINGS_QUERY = """
select posting_id, transaction_id, account_id, gl_code, currency, side, amount, value_date, status,
       (sum(case when side = 'debit' then amount else -amount end)
            over (partition by transaction_id) * 100)::bigint as transaction_imbalance_cents
from {stage}.postings
"""


def staged_postings_expectations(business_date: date) -> list:
    return [
        *gx_gate.has_rows(1),
        *gx_gate.not_null(["posting_id", "transaction_id", "account_id", "gl_code", "currency",
                           "side", "amount", "value_date", "status"]),
        *gx_gate.unique(["posting_id"]),
        *gx_gate.in_set("currency", sorted(ISO_4217)),
        *gx_gate.in_set("status", POSTING_STATUSES),
        *gx_gate.in_set("side", SIDES),
        *gx_gate.between_dates("value_date", business_date, business_date, as_timestamps=True),
        *gx_gate.in_set("transaction_imbalance_cents", [0]),
    ]

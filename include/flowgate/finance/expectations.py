"""The SOX data-quality checks on a staged business date, as Great Expectations.

The checks themselves are a reviewed file, ``expectations/finance_staged_postings.json``
(16 expectations; :func:`staged_postings_suite` loads it), so that a change to a control
is a reviewed diff and every audit row records the SHA-256 of the version that ran. What
changes per run, the business date's bounds, are its suite parameters
(:func:`staged_postings_parameters`).

They run over the staged postings (one row per posting, plus the imbalance of the
transaction it belongs to) before anything is published. The frame they see is built by
``pipeline._staged_postings_frame``: ids and cents as int64, the text columns (amount
too: it is only checked for presence, and money never becomes a float) as categoricals,
``value_date`` as ``datetime64[ns]``, so that GX checks a million rows with whole-column
operations instead of Python loops.
"""

from __future__ import annotations

from datetime import date, datetime, time

SUITE_NAME = "finance_staged_postings"

# The staged postings with, per row, how far its transaction is from balancing, in cents
# (debits minus credits; 0 for a balanced transaction). Integer cents keep the check
# exact: no float ever compares money.
STAGED_POSTINGS_QUERY = """
select posting_id, transaction_id, account_id, gl_code, currency, side, amount, value_date, status,
       (sum(case when side = 'debit' then amount else -amount end)
            over (partition by transaction_id) * 100)::bigint as transaction_imbalance_cents
from {stage}.postings
"""


def staged_postings_suite():
    """The reviewed suite file, loaded (imports GX: call it in the task, not at parse time)."""
    from flowgate.common import gx_gate

    return gx_gate.load_suite(SUITE_NAME)


def staged_postings_parameters(business_date: date) -> dict:
    """The suite's parameters for one business date: every posting is of that day.

    Midnight timestamps, because ``value_date`` is ``datetime64[ns]`` in the frame: GX
    then compares the whole column at once (a time of day other than midnight falls
    outside the day).
    """
    midnight = datetime.combine(business_date, time())
    return {"value_date_min": midnight, "value_date_max": midnight}

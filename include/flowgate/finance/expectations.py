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

# Active ISO 4217 alphabetic codes. A posting in anything else is a data error upstream.
ISO_4217 = frozenset("""
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX
USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())

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

"""The finance gate's 16 expectations over the frame it really builds: PostgreSQL's CSV of
the staged postings query, parsed by pyarrow into compact types."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest

from flowgate.common.gx_gate import run_gate
from flowgate.finance import expectations
from flowgate.finance.staged_rows import parse_staged_postings

DAY = date(2026, 6, 30)
HEADER = ("posting_id,transaction_id,account_id,gl_code,currency,side,amount,value_date,status,"
          "transaction_imbalance_cents")
GOOD_ROWS = [
    "1,10,100,2000-DEPOSITS,EUR,debit,12.50,2026-06-30,booked,0",
    "2,10,200,1000-CASH,EUR,credit,12.50,2026-06-30,booked,0",
    "3,11,100,4000-FEES,USD,debit,0.99,2026-06-30,pending,0",
    "4,11,300,2000-DEPOSITS,USD,credit,0.99,2026-06-30,pending,0",
]


def frame(rows: list[str]) -> pd.DataFrame:
    """As the gate gets it: COPY ... (format csv, header) → pyarrow → pandas."""
    return parse_staged_postings(io.BytesIO("".join(f"{line}\n" for line in [HEADER, *rows]).encode())).to_pandas()


def failures(rows: list[str], tmp_path) -> set[tuple[str, str | None]]:
    result = run_gate("finance_staged_postings", frame(rows), expectations.staged_postings_expectations(DAY),
                      tmp_path, "test")
    assert result.evaluated == 16
    return {(f["expectation"], f["column"]) for f in result.failed}


def test_the_frame_has_the_compact_types_gx_checks_column_at_once():
    dtypes = frame(GOOD_ROWS).dtypes
    assert {c: str(dtypes[c]) for c in ("posting_id", "transaction_id", "account_id",
                                        "transaction_imbalance_cents", "value_date")} == {
        "posting_id": "int64", "transaction_id": "int64", "account_id": "int64",
        "transaction_imbalance_cents": "int64", "value_date": "datetime64[ns]"}
    for text in ("gl_code", "currency", "side", "amount", "status"):
        assert isinstance(dtypes[text], pd.CategoricalDtype), text
    assert list(frame(GOOD_ROWS)["amount"]) == ["12.50", "12.50", "0.99", "0.99"], "amounts stay exact text"


def test_a_clean_day_passes_all_sixteen(tmp_path):
    assert failures(GOOD_ROWS, tmp_path) == set()


def test_each_broken_rule_fails_its_own_expectation(tmp_path):
    rows = GOOD_ROWS + [
        "4,12,300,2000-DEPOSITS,EUR,debit,1.00,2026-06-30,booked,0",  # duplicate posting id
        "5,12,300,2000-DEPOSITS,XXX,credit,1.00,2026-06-30,booked,0",  # not an ISO 4217 code
        "6,13,300,2000-DEPOSITS,EUR,sideways,1.00,2026-06-30,booked,0",
        "7,13,300,2000-DEPOSITS,EUR,credit,1.00,2026-06-30,parked,0",
        "8,14,300,2000-DEPOSITS,EUR,debit,1.00,2026-07-01,booked,0",  # outside the business date
        "9,15,300,2000-DEPOSITS,EUR,debit,,2026-06-30,booked,",  # NULL amount (unquoted empty field)
        "10,16,300,2000-DEPOSITS,EUR,debit,1.01,2026-06-30,booked,1",  # its transaction is a cent off
    ]
    assert failures(rows, tmp_path) == {
        ("expect_column_values_to_be_unique", "posting_id"),
        ("expect_column_values_to_be_in_set", "currency"),
        ("expect_column_values_to_be_in_set", "side"),
        ("expect_column_values_to_be_in_set", "status"),
        ("expect_column_values_to_be_between", "value_date"),
        ("expect_column_values_to_not_be_null", "amount"),
        ("expect_column_values_to_be_in_set", "transaction_imbalance_cents"),
    }


def test_a_quoted_empty_string_is_a_value_not_a_null(tmp_path):
    rows = [GOOD_ROWS[0].replace("2000-DEPOSITS", '""'), *GOOD_ROWS[1:]]
    assert frame(rows)["gl_code"].isna().sum() == 0
    assert failures(rows, tmp_path) == set()


def test_an_empty_stage_fails_on_row_count(tmp_path):
    assert ("expect_table_row_count_to_be_between", None) in failures([], tmp_path)


@pytest.mark.parametrize("value_date", ["2026-06-29", "2026-07-01"])
def test_the_date_check_is_inclusive_of_the_day_only(value_date, tmp_path):
    rows = [GOOD_ROWS[0].replace("2026-06-30", value_date), *GOOD_ROWS[1:]]
    assert failures(rows, tmp_path) == {("expect_column_values_to_be_between", "value_date")}

"""The finance gate's 16 expectations over the frame it really builds: PostgreSQL's CSV of
the staged postings query, parsed by pyarrow into compact types. The expectations are the
reviewed file expectations/finance_staged_postings.json."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date, datetime

import pandas as pd
import pytest

from flowgate.common import gx_gate
from flowgate.common.currencies import ISO_4217
from flowgate.common.gx_gate import run_gate
from flowgate.finance import expectations
from flowgate.finance.staged_rows import parse_staged_postings

SUITE_FILE = gx_gate.SUITES_DIR / "finance_staged_postings.json"

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


@pytest.fixture(scope="module")
def suite() -> gx_gate.Suite:
    return expectations.staged_postings_suite()


def gate(rows: list[str], suite, tmp_path, day: date = DAY) -> gx_gate.GateResult:
    return run_gate(suite.name, frame(rows), suite, tmp_path, "test",
                    suite_parameters=expectations.staged_postings_parameters(day))


def failures(rows: list[str], tmp_path, suite) -> set[tuple[str, str | None]]:
    result = gate(rows, suite, tmp_path)
    assert result.evaluated == 16
    return {(f["expectation"], f["column"]) for f in result.failed}


# --------------------------------------------------------------------------- the suite file


def test_the_suite_is_the_reviewed_file_in_expectations(suite):
    assert suite.path == SUITE_FILE.resolve()
    assert suite.file == "finance_staged_postings.json"
    assert suite.name == expectations.SUITE_NAME == "finance_staged_postings"
    assert len(suite.expectations) == 16
    assert suite.sha256 == hashlib.sha256(SUITE_FILE.read_bytes()).hexdigest()
    assert suite.parameters == ["value_date_min", "value_date_max"]


def test_the_file_lists_exactly_the_iso_4217_codes_the_platform_knows():
    (entry,) = [e for e in json.loads(SUITE_FILE.read_text())["expectations"]
                if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "currency"]
    codes = entry["kwargs"]["value_set"]
    assert len(codes) == len(set(codes)), "a code listed twice"
    assert set(codes) == ISO_4217


def test_the_parameters_are_the_business_day_at_midnight():
    assert expectations.staged_postings_parameters(DAY) == {
        "value_date_min": datetime(2026, 6, 30), "value_date_max": datetime(2026, 6, 30)}


def test_the_result_records_which_version_of_the_control_ran(suite, tmp_path):
    result = gate(GOOD_ROWS, suite, tmp_path)
    assert (result.suite_file, result.suite_sha256) == ("finance_staged_postings.json", suite.sha256)
    assert result.statistics["suite_parameters"] == {
        "value_date_min": "2026-06-30T00:00:00", "value_date_max": "2026-06-30T00:00:00"}


def test_without_the_business_date_the_gate_refuses_to_run(suite, tmp_path):
    with pytest.raises(gx_gate.MissingSuiteParameter, match="value_date_min"):
        run_gate(suite.name, frame(GOOD_ROWS), suite, tmp_path, "no-date")


# --------------------------------------------------------------------------- the checks


def test_the_frame_has_the_compact_types_gx_checks_column_at_once():
    dtypes = frame(GOOD_ROWS).dtypes
    assert {c: str(dtypes[c]) for c in ("posting_id", "transaction_id", "account_id",
                                        "transaction_imbalance_cents", "value_date")} == {
        "posting_id": "int64", "transaction_id": "int64", "account_id": "int64",
        "transaction_imbalance_cents": "int64", "value_date": "datetime64[ns]"}
    for text in ("gl_code", "currency", "side", "amount", "status"):
        assert isinstance(dtypes[text], pd.CategoricalDtype), text
    assert list(frame(GOOD_ROWS)["amount"]) == ["12.50", "12.50", "0.99", "0.99"], "amounts stay exact text"


def test_a_clean_day_passes_all_sixteen(tmp_path, suite):
    assert failures(GOOD_ROWS, tmp_path, suite) == set()


def test_each_broken_rule_fails_its_own_expectation(tmp_path, suite):
    rows = GOOD_ROWS + [
        "4,12,300,2000-DEPOSITS,EUR,debit,1.00,2026-06-30,booked,0",  # duplicate posting id
        "5,12,300,2000-DEPOSITS,XXX,credit,1.00,2026-06-30,booked,0",  # not an ISO 4217 code
        "6,13,300,2000-DEPOSITS,EUR,sideways,1.00,2026-06-30,booked,0",
        "7,13,300,2000-DEPOSITS,EUR,credit,1.00,2026-06-30,parked,0",
        "8,14,300,2000-DEPOSITS,EUR,debit,1.00,2026-07-01,booked,0",  # outside the business date
        "9,15,300,2000-DEPOSITS,EUR,debit,,2026-06-30,booked,",  # NULL amount (unquoted empty field)
        "10,16,300,2000-DEPOSITS,EUR,debit,1.01,2026-06-30,booked,1",  # its transaction is a cent off
    ]
    assert failures(rows, tmp_path, suite) == {
        ("expect_column_values_to_be_unique", "posting_id"),
        ("expect_column_values_to_be_in_set", "currency"),
        ("expect_column_values_to_be_in_set", "side"),
        ("expect_column_values_to_be_in_set", "status"),
        ("expect_column_values_to_be_between", "value_date"),
        ("expect_column_values_to_not_be_null", "amount"),
        ("expect_column_values_to_be_in_set", "transaction_imbalance_cents"),
    }


def test_a_quoted_empty_string_is_a_value_not_a_null(tmp_path, suite):
    rows = [GOOD_ROWS[0].replace("2000-DEPOSITS", '""'), *GOOD_ROWS[1:]]
    assert frame(rows)["gl_code"].isna().sum() == 0
    assert failures(rows, tmp_path, suite) == set()


def test_an_empty_stage_fails_on_row_count(tmp_path, suite):
    assert ("expect_table_row_count_to_be_between", None) in failures([], tmp_path, suite)


@pytest.mark.parametrize("value_date", ["2026-06-29", "2026-07-01"])
def test_the_date_check_is_inclusive_of_the_day_only(value_date, tmp_path, suite):
    rows = [GOOD_ROWS[0].replace("2026-06-30", value_date), *GOOD_ROWS[1:]]
    assert failures(rows, tmp_path, suite) == {("expect_column_values_to_be_between", "value_date")}


def test_the_same_suite_checks_each_day_against_its_own_date(tmp_path, suite):
    """One loaded suite, two runs: the second run's parameters are not the first's."""
    assert gate(GOOD_ROWS, suite, tmp_path / "a").success
    later = gate(GOOD_ROWS, suite, tmp_path / "b", day=date(2026, 7, 1))
    (failure,) = later.failed
    assert failure["kwargs"]["min_value"] == "2026-07-01T00:00:00"
    assert failure["unexpected_count"] == 4

"""The GX gate, against real Great Expectations 1.x: verdicts, failures, per-run Data Docs."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from flowgate.common import gx_gate
from flowgate.common.gates import GateRejected, gate_failures_are_final
from flowgate.common.gx_gate import GateFailed, GateResult, run_gate

SUITE = "finance_gl_staging"

# Built once and reused by every run, as a flow module would do: the gate must copy them.
EXPECTATIONS = (
    gx_gate.has_rows()
    + gx_gate.not_null(["txn_id", "amount", "currency"])
    + gx_gate.unique("txn_id")
    + gx_gate.in_set("currency", ["EUR", "USD", "GBP"])
    + gx_gate.between_dates("business_date", date(2024, 3, 1), date(2024, 3, 1))
)


def ledger(**changes) -> pd.DataFrame:
    """Three good rows, as psycopg hands them over (Decimal amounts, date objects)."""
    rows = {
        "txn_id": ["t-1", "t-2", "t-3"],
        "amount": [Decimal("10.00"), Decimal("20.50"), Decimal("-3.25")],
        "currency": ["EUR", "USD", "EUR"],
        "business_date": [date(2024, 3, 1)] * 3,
    }
    rows.update(changes)
    return pd.DataFrame(rows)


def bad_ledger() -> pd.DataFrame:
    """One null amount, one duplicate id, one currency outside the domain."""
    return ledger(
        txn_id=["t-1", "t-2", "t-2"],
        amount=[Decimal("10.00"), None, Decimal("-3.25")],
        currency=["EUR", "USD", "XXX"],
    )


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gx_docs")


@pytest.fixture(scope="module")
def passed(docs_dir) -> GateResult:
    return run_gate(SUITE, ledger(), EXPECTATIONS, docs_dir, "scheduled__2024-03-01T00:00:00+00:00")


@pytest.fixture(scope="module")
def failed(docs_dir) -> GateResult:
    return run_gate(SUITE, bad_ledger(), EXPECTATIONS, docs_dir, "manual__2024-03-01T06:00:00+00:00")


def by_expectation(result: GateResult) -> dict[tuple[str, str | None], dict]:
    return {(f["expectation"], f["column"]): f for f in result.failed}


# --------------------------------------------------------------------------- passing


def test_a_clean_frame_passes_every_expectation(passed):
    assert passed.success is True
    assert passed.failed == []
    assert passed.evaluated == len(EXPECTATIONS) == 7
    assert passed.statistics["successful_expectations"] == 7
    assert passed.statistics["rows"] == 3
    passed.raise_if_failed()  # no exception


def test_a_passing_run_writes_data_docs_that_name_the_suite(passed, docs_dir):
    assert passed.docs_index == docs_dir / "scheduled__2024-03-01T00-00-00-00-00" / "index.html"
    assert passed.docs_index.is_file()
    assert SUITE in passed.docs_index.read_text()
    validation_pages = list((passed.docs_index.parent / "validations" / SUITE).rglob("*.html"))
    assert len(validation_pages) == 1


def test_the_verdict_is_kept_as_json_beside_the_docs(passed):
    kept = json.loads((passed.docs_index.parent / gx_gate.RESULT_FILE).read_text())
    assert kept == passed.to_dict()
    assert kept["success"] is True
    assert kept["statistics"]["run_label"] == "scheduled__2024-03-01T00:00:00+00:00"


# --------------------------------------------------------------------------- failing


def test_a_bad_frame_fails_with_exactly_the_three_broken_expectations(failed):
    assert failed.success is False
    assert failed.evaluated == 7
    assert set(by_expectation(failed)) == {
        ("expect_column_values_to_not_be_null", "amount"),
        ("expect_column_values_to_be_unique", "txn_id"),
        ("expect_column_values_to_be_in_set", "currency"),
    }
    assert failed.statistics["unsuccessful_expectations"] == 3


def test_each_failure_says_what_was_found(failed):
    found = by_expectation(failed)
    in_set = found[("expect_column_values_to_be_in_set", "currency")]
    assert in_set["unexpected_count"] == 1
    assert in_set["unexpected_values"] == ["XXX"]
    assert in_set["kwargs"] == {"column": "currency", "value_set": ["EUR", "USD", "GBP"]}
    assert found[("expect_column_values_to_be_unique", "txn_id")]["unexpected_values"] == ["t-2"]
    assert found[("expect_column_values_to_not_be_null", "amount")]["unexpected_count"] == 1


def test_the_result_is_plain_json(failed):
    text = json.dumps(failed.to_dict(), allow_nan=False)
    assert json.loads(text)["failed"] == failed.failed


def test_raise_if_failed_raises_a_gate_rejection_naming_each_failure(failed):
    with pytest.raises(GateFailed) as raised:
        failed.raise_if_failed()
    message = str(raised.value)
    assert isinstance(raised.value, GateRejected)
    assert raised.value.result is failed
    for expectation, column in by_expectation(failed):
        assert f"{expectation} on {column!r}" in message
    assert "'XXX'" in message
    assert str(failed.docs_index) in message


def test_a_failed_gate_fails_the_airflow_task_without_retries(failed):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="expect_column_values_to_be_in_set"):
        with gate_failures_are_final():
            failed.raise_if_failed()


def test_gate_failed_survives_pickling_with_its_result(failed):
    copy = pickle.loads(pickle.dumps(GateFailed(failed)))
    assert copy.result == failed
    assert str(copy) == failed.summary()


def test_a_failed_run_still_writes_its_data_docs(failed):
    assert failed.docs_index is not None and failed.docs_index.is_file()
    page = next((failed.docs_index.parent / "validations").rglob("*.html")).read_text()
    assert "XXX" in page


# --------------------------------------------------------------------------- evidence per run


def test_runs_with_different_labels_keep_their_own_docs(passed, failed, docs_dir):
    first_index = passed.docs_index.read_text()
    later = run_gate(SUITE, ledger(), EXPECTATIONS, docs_dir, "backfill__2024-03-01T00:00:00+00:00")

    run_folders = {p.name for p in docs_dir.iterdir()}
    assert {passed.docs_index.parent.name, failed.docs_index.parent.name, later.docs_index.parent.name} <= run_folders
    assert len({passed.docs_index, failed.docs_index, later.docs_index}) == 3
    assert passed.docs_index.read_text() == first_index  # untouched by the later runs
    for result in (passed, failed, later):
        assert result.docs_index.is_file()
        assert list((result.docs_index.parent / "validations").rglob("*.html"))


def test_unexpected_sample_zero_keeps_values_out_of_the_evidence(tmp_path):
    result = run_gate(SUITE, bad_ledger(), EXPECTATIONS, tmp_path, "private")
    hidden = run_gate(SUITE, bad_ledger(), EXPECTATIONS, tmp_path, "private-0", unexpected_sample=0)

    assert "unexpected_values" in by_expectation(result)[("expect_column_values_to_be_in_set", "currency")]
    assert by_expectation(hidden)[("expect_column_values_to_be_in_set", "currency")]["unexpected_count"] == 1
    assert all("unexpected_values" not in f for f in hidden.failed)
    written = "".join(p.read_text() for p in hidden.docs_index.parent.rglob("*.html"))
    written += (hidden.docs_index.parent / gx_gate.RESULT_FILE).read_text()
    assert "XXX" not in written


# --------------------------------------------------------------------------- helpers and edges


def test_rows_outside_the_data_interval_fail_between_dates(tmp_path):
    frame = ledger(business_date=[date(2024, 3, 1), date(2024, 3, 2), date(2024, 2, 29)])
    result = run_gate(SUITE, frame, EXPECTATIONS, tmp_path, "dates")
    (failure,) = result.failed
    assert failure["expectation"] == "expect_column_values_to_be_between"
    assert failure["kwargs"]["min_value"] == "2024-03-01"
    assert sorted(failure["unexpected_values"]) == ["2024-02-29", "2024-03-02"]


def test_an_expectation_that_cannot_be_evaluated_fails_closed_with_the_reason(tmp_path):
    frame = ledger(business_date=["2024-03-01"] * 3)  # strings, as read from a CSV
    result = run_gate(SUITE, frame.drop(columns="currency"), EXPECTATIONS, tmp_path, "broken")

    assert result.success is False
    errors = {(f["expectation"], f["column"]): f.get("error") for f in result.failed}
    assert errors[("expect_column_values_to_be_between", "business_date")]
    assert errors[("expect_column_values_to_not_be_null", "currency")]


def test_an_empty_frame_fails_has_rows(tmp_path):
    result = run_gate(SUITE, ledger().iloc[0:0], EXPECTATIONS, tmp_path, "empty")
    assert [f["expectation"] for f in result.failed] == ["expect_table_row_count_to_be_between"]
    assert result.failed[0]["observed_value"] == 0


def test_columns_are_catches_a_changed_file_layout(tmp_path):
    frame = ledger().rename(columns={"currency": "ccy"})
    result = run_gate("partner_schema", frame, gx_gate.columns_are(ledger().columns), tmp_path, "layout")
    assert not result.success
    assert result.failed[0]["expectation"] == "expect_table_columns_to_match_set"


def test_unique_together_checks_a_compound_key(tmp_path):
    frame = ledger(txn_id=["t-1", "t-1", "t-2"], currency=["EUR", "EUR", "USD"])
    result = run_gate("key", frame, gx_gate.unique_together(["txn_id", "currency"]), tmp_path, "key")
    assert not result.success
    assert result.failed[0]["unexpected_count"] == 2


def test_a_gate_without_expectations_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no expectations"):
        run_gate(SUITE, ledger(), [], tmp_path, "nothing")


def test_helpers_read_a_bare_string_as_one_column():
    assert [e.column for e in gx_gate.not_null("txn_id")] == ["txn_id"]
    with pytest.raises(ValueError):
        gx_gate.unique([])
    with pytest.raises(ValueError):
        gx_gate.between_dates("d", date(2024, 3, 2), date(2024, 3, 1))


def test_importing_the_module_does_not_import_great_expectations():
    code = (
        "import sys, flowgate.common.gx_gate; "
        "sys.exit('great_expectations' in sys.modules or 'pandas' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_between_dates_as_timestamps_checks_a_datetime64_column_at_once(tmp_path):
    day = date(2024, 3, 1)
    frame = pd.DataFrame({"d": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-02-29", "2024-03-01"])})
    result = run_gate("dates", frame, gx_gate.between_dates("d", day, day, as_timestamps=True), tmp_path, "ts")
    (failure,) = result.failed
    assert failure["unexpected_count"] == 2
    assert failure["kwargs"]["min_value"] == failure["kwargs"]["max_value"] == "2024-03-01T00:00:00"
    clean = frame[frame["d"] == pd.Timestamp(day)]
    assert run_gate("dates", clean, gx_gate.between_dates("d", day, day, as_timestamps=True), tmp_path, "ok").success


def test_gx_is_imported_without_the_integrations_a_gate_never_uses():
    code = (
        "import sys; from flowgate.common import gx_gate; gx_gate._gx()\n"
        "from great_expectations.compatibility import pyspark, sqlalchemy\n"
        "from great_expectations.compatibility.not_imported import NotImported\n"
        "assert isinstance(pyspark.pyspark, NotImported) and isinstance(sqlalchemy.sqlalchemy, NotImported)\n"
        "assert not [m for m in gx_gate.UNUSED_INTEGRATIONS if m in sys.modules]\n"
        "import sqlalchemy  # hidden only while GX imports: afterwards it imports as usual\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_an_integration_imported_before_gx_is_left_to_it():
    code = (
        "import sqlalchemy; from flowgate.common import gx_gate; gx_gate._gx()\n"
        "from great_expectations.compatibility import sqlalchemy as compat\n"
        "assert compat.sqlalchemy is sqlalchemy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr

"""The GX gate, against real Great Expectations 1.x: verdicts, failures, per-run Data Docs,
reviewed suite files and their parameters. (The table gate against PostgreSQL:
tests/integration/test_gx_table_gate.py.)"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

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


# --------------------------------------------------------------------------- suite files


def write_suite(folder: Path, name: str, expectations: list, **extra) -> Path:
    path = folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": name, "expectations": expectations, "meta": {}, **extra}, indent=2))
    return path


LEDGER_SUITE = [
    {"type": "expect_table_row_count_to_be_between",
     "kwargs": {"min_value": {"$PARAMETER": "rows"}, "max_value": {"$PARAMETER": "rows"}}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "txn_id"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency", "value_set": ["EUR", "USD"]},
     "meta": {"why": "the ledger books in two currencies"}},
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "business_date", "min_value": {"$PARAMETER": "day"}, "max_value": {"$PARAMETER": "day"}}},
]
DAY = {"rows": 3, "day": date(2024, 3, 1)}


@pytest.fixture
def suites(tmp_path, monkeypatch):
    """A suites folder of its own, as FLOWGATE_EXPECTATIONS_DIR points the gate to it."""
    folder = tmp_path / "expectations"
    monkeypatch.setenv(gx_gate.SUITES_DIR_ENV, str(folder))
    write_suite(folder, "ledger", LEDGER_SUITE)
    return folder


def test_the_suites_live_in_the_repos_expectations_folder(monkeypatch):
    monkeypatch.delenv(gx_gate.SUITES_DIR_ENV, raising=False)
    repo = Path(__file__).resolve().parents[3]
    assert gx_gate.suites_dir() == gx_gate.SUITES_DIR == repo / "expectations"
    assert (repo / "expectations" / "finance_staged_postings.json").is_file()


def test_a_bare_name_is_a_file_of_the_suites_folder_and_its_digest_is_of_its_bytes(suites):
    suite = gx_gate.load_suite("ledger")
    assert suite.path == (suites / "ledger.json").resolve()
    assert suite.file == "ledger.json"
    assert suite.sha256 == hashlib.sha256((suites / "ledger.json").read_bytes()).hexdigest()
    assert suite.name == "ledger"
    assert [e.expectation_type for e in suite.expectations] == [e["type"] for e in LEDGER_SUITE]
    assert suite.expectations[2].meta == {"why": "the ledger books in two currencies"}
    assert suite.parameters == ["rows", "day"]
    assert gx_gate.load_suite(suites / "ledger.json") == suite  # a path works as well


def test_one_byte_more_is_another_version(suites):
    before = gx_gate.load_suite("ledger").sha256
    (suites / "ledger.json").write_bytes((suites / "ledger.json").read_bytes() + b"\n")
    assert gx_gate.load_suite("ledger").sha256 != before


def test_a_suite_in_a_subfolder_is_recorded_by_its_relative_path(suites):
    write_suite(suites / "partners", "acme", [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}])
    assert gx_gate.load_suite("partners/acme").file == "partners/acme.json"


def test_what_gx_itself_writes_loads_back(tmp_path):
    gx = gx_gate._gx()
    written = gx.ExpectationSuite(name="written_by_gx", expectations=[copy.copy(e) for e in EXPECTATIONS])
    path = tmp_path / "written_by_gx.json"
    path.write_text(json.dumps(written.to_json_dict()))
    loaded = gx_gate.load_suite(path)
    assert loaded.name == "written_by_gx"
    assert [e.configuration.to_json_dict()["kwargs"] for e in loaded.expectations] == [
        e.configuration.to_json_dict()["kwargs"] for e in EXPECTATIONS]
    assert loaded.file == str(path.resolve())  # outside the suites folder: the full path


@pytest.mark.parametrize(("content", "error"), [
    ({"name": "s", "expectations": [{"type": "expect_column_values_to_be_purple", "kwargs": {"column": "c"}}]},
     "unknown expectation type 'expect_column_values_to_be_purple'"),
    ({"name": "s", "expectations": []}, "has no expectations"),
    ({"name": "s"}, "has no expectations"),
    ({"name": "s", "expectation": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "c"}}]},
     "unknown suite keys \\['expectation'\\]"),
    ({"name": "s", "expectations": [{"type": "expect_column_values_to_not_be_null", "kwarg": {"column": "c"}}]},
     "expectation #1: an expectation is an object with"),
    ({"name": "s", "expectations": [{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "c"}}]},
     "expectation #1 \\(expect_column_values_to_be_in_set\\)"),
    ({"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "c"}}]}, "no name"),
    ([], "one JSON object"),
])
def test_a_suite_file_that_cannot_be_trusted_is_refused(tmp_path, content, error):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(content))
    with pytest.raises(gx_gate.SuiteFileError, match=error):
        gx_gate.load_suite(path)


def test_a_missing_suite_file_says_where_it_was_looked_for(suites):
    with pytest.raises(FileNotFoundError, match=str(suites / "nosuch.json")):
        gx_gate.load_suite("nosuch")


def test_a_file_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "s.json").write_text("{'name': 's'}")
    with pytest.raises(gx_gate.SuiteFileError, match="not a JSON file"):
        gx_gate.load_suite(tmp_path / "s.json")


def test_a_suite_runs_with_its_parameters_and_the_result_names_the_version(suites, tmp_path):
    suite = gx_gate.load_suite("ledger")
    result = run_gate(suite.name, ledger(), suite, tmp_path, "params", suite_parameters=DAY)
    assert result.success, result.summary()
    assert result.evaluated == 4
    assert (result.suite_file, result.suite_sha256) == ("ledger.json", suite.sha256)
    kept = json.loads((result.docs_index.parent / gx_gate.RESULT_FILE).read_text())
    assert kept["suite_file"] == "ledger.json" and kept["suite_sha256"] == suite.sha256
    assert kept["statistics"]["suite_parameters"] == {"rows": 3, "day": "2024-03-01"}
    assert f"Suite: ledger.json (sha256 {suite.sha256[:12]})" in result.summary()


def test_the_parameters_are_what_the_expectations_compare_against(suites, tmp_path):
    suite = gx_gate.load_suite("ledger")
    result = run_gate(suite.name, ledger(), suite, tmp_path, "other-day",
                      suite_parameters={"rows": 4, "day": date(2024, 3, 2)})
    found = by_expectation(result)
    assert set(found) == {("expect_table_row_count_to_be_between", None), ("expect_column_values_to_be_between", "business_date")}
    assert found[("expect_table_row_count_to_be_between", None)]["kwargs"] == {"min_value": 4, "max_value": 4}
    assert found[("expect_table_row_count_to_be_between", None)]["observed_value"] == 3
    assert found[("expect_column_values_to_be_between", "business_date")]["kwargs"]["min_value"] == "2024-03-02"


def test_a_missing_parameter_fails_closed_before_anything_is_validated(suites, tmp_path):
    suite = gx_gate.load_suite("ledger")
    with pytest.raises(gx_gate.MissingSuiteParameter, match=r"'ledger'.*\['day'\].*given: \['rows'\]"):
        run_gate(suite.name, ledger(), suite, tmp_path, "missing", suite_parameters={"rows": 3})
    with pytest.raises(gx_gate.MissingSuiteParameter, match=r"\['rows', 'day'\].*given: none"):
        run_gate(suite.name, ledger(), suite, tmp_path, "none")
    assert not (tmp_path / "missing").exists() and not (tmp_path / "none").exists(), "no evidence of a run that did not happen"


def test_a_parameter_expression_is_checked_by_gx_parser(tmp_path):
    path = write_suite(tmp_path, "expr", [{"type": "expect_table_row_count_to_be_between",
                                          "kwargs": {"min_value": {"$PARAMETER": "rows - 1"}}}])
    suite = gx_gate.load_suite(path)
    with pytest.raises(gx_gate.MissingSuiteParameter, match="rows - 1"):
        run_gate("expr", ledger(), suite, tmp_path, "expr")
    assert run_gate("expr", ledger(), suite, tmp_path, "expr", suite_parameters={"rows": 4}).success


def test_a_plain_list_records_no_suite_file(passed):
    assert passed.suite_file is None and passed.suite_sha256 is None
    assert passed.to_dict()["suite_file"] is None and passed.to_dict()["suite_sha256"] is None


def test_the_verdict_a_gate_task_returns_names_the_suite_version_that_ran(suites, tmp_path):
    suite = gx_gate.load_suite("ledger")
    verdict = run_gate("ledger", ledger(), suite, tmp_path, "verdict",
                       suite_parameters={"rows": 3, "day": date(2024, 3, 1)}).verdict()
    assert verdict["gate"] == "expectations" and verdict["success"] is True and verdict["failed"] == []
    assert (verdict["suite_file"], verdict["suite_sha256"]) == (suite.file, suite.sha256)
    assert verdict["data_docs"].endswith("index.html") and verdict["evaluated"] == len(suite.expectations)


def test_a_suite_with_unexpected_sample_zero_copies_no_offending_value_anywhere(tmp_path):
    """A distinctive value fails three checks; no file of the run's evidence holds it."""
    planted = "ZZ-PLANTED-Q7X9W"  # distinctive, and no card number (DESIGN.md §5)
    path = write_suite(tmp_path / "suites", "private", [
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency", "value_set": ["EUR", "USD"]}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "currency", "regex": "^[A-Z]{3}$"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "txn_id"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}},
    ])
    frame = ledger(txn_id=["t-1", planted, planted], currency=["EUR", planted, "USD"],
                   amount=[Decimal("1.00"), None, Decimal("2.00")])
    result = run_gate("private", frame, gx_gate.load_suite(path), tmp_path / "docs", "private", unexpected_sample=0)

    assert {f["expectation"]: f["unexpected_count"] for f in result.failed} == {
        "expect_column_values_to_be_in_set": 1, "expect_column_values_to_match_regex": 1,
        "expect_column_values_to_be_unique": 2, "expect_column_values_to_not_be_null": 1}
    assert planted not in json.dumps(result.to_dict()) and planted not in result.summary()
    evidence = [p for p in (tmp_path / "docs").rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in evidence) and any(p.name == gx_gate.RESULT_FILE for p in evidence)
    assert [p for p in evidence if planted.encode() in p.read_bytes()] == []
    # ...while the default sample shows it: the test would catch a value that did leak.
    shown = run_gate("private", frame, gx_gate.load_suite(path), tmp_path / "docs", "shown")
    assert planted in json.dumps(shown.to_dict())


# --------------------------------------------------------------------------- the table gate, without a database


def test_the_postgres_url_names_the_server_and_never_holds_the_password():
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(host="127.0.0.1", port=5544, dbname="warehouse", user="flowgate",
                             password="p@ss w$rd'${HOME}", connect_timeout=10)
    url = gx_gate._postgres_url(conninfo)
    assert url == "postgresql+psycopg2://flowgate@127.0.0.1:5544/warehouse"
    assert gx_gate._postgres_url("host=/run/pg dbname=w") == "postgresql+psycopg2://postgres@localhost/w"
    assert gx_gate._postgres_url("postgresql://u:secret@db1,db2:5432/w").startswith("postgresql+psycopg2://u@db1")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_a_suite_file_keeps_gx_able_to_run_a_table_gate_in_the_same_process(tmp_path):
    """A suite loaded for the table gate first (no SQLAlchemy imported yet): GX comes up
    with its SQL datasources."""
    path = write_suite(tmp_path, "s", [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "c"}}])
    done = _python(
        "import sys; assert 'sqlalchemy' not in sys.modules\n"
        f"from flowgate.common import gx_gate; gx_gate.load_suite({str(path)!r}, for_table_gate=True)\n"
        "assert gx_gate._has_sql()\n"
        "assert not [m for m in gx_gate.UNUSED_INTEGRATIONS if m in sys.modules and m != 'sqlalchemy']\n"
    )
    assert done.returncode == 0, done.stderr


def test_a_table_gate_after_gx_came_up_without_sql_runs_in_a_child_process(tmp_path):
    """A pandas-first GX cannot learn SQL: the gate goes to a child, whose errors come back.

    (tests/integration/test_gx_table_gate.py runs it against a real database.)"""
    path = write_suite(tmp_path, "s", [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "c"}}])
    done = _python(
        "from flowgate.common import gx_gate; gx_gate._gx(); assert not gx_gate._has_sql()\n"
        f"suite = gx_gate.load_suite({str(path)!r})\n"
        "try:\n"
        "    gx_gate.run_table_gate(suite, 'host=/nonexistent/socket/dir dbname=nowhere user=nobody', 's', 't',"
        f" {str(tmp_path)!r}, 'x')\n"
        "except gx_gate.TableGateError as e:\n"
        "    print(e)\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    assert done.returncode == 0, done.stderr
    assert "running the table gate in a child process" in done.stderr
    assert done.stdout.startswith("GX gate 's' (in a child process): ")
    assert "/nonexistent/socket/dir" in done.stdout, "the child's own error, as it said it"


def test_the_child_process_refuses_a_suite_file_changed_since_it_was_loaded(tmp_path):
    path = write_suite(tmp_path, "s", [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "c"}}])
    done = _python(
        "from flowgate.common import gx_gate; gx_gate._gx()\n"
        f"suite = gx_gate.load_suite({str(path)!r})\n"
        f"open({str(path)!r}, 'a').write(' ')\n"
        "try:\n"
        f"    gx_gate.run_table_gate(suite, 'dbname=nowhere', 's', 't', {str(tmp_path)!r}, 'x')\n"
        "except gx_gate.SuiteFileError as e:\n"
        "    print(e)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "changed after it was loaded" in done.stdout


def test_run_table_gate_takes_a_reviewed_suite_only(tmp_path):
    with pytest.raises(TypeError, match="takes a Suite"):
        gx_gate.run_table_gate(EXPECTATIONS, "dbname=w", "s", "t", tmp_path, "x")


def test_a_suite_for_a_frame_gate_does_not_import_sqlalchemy_for_gx(tmp_path):
    """A pandas gate needs no SQL: outside Airflow, loading SQLAlchemy first costs ~1.5 s."""
    import subprocess
    import sys

    code = ("import sys\nfrom flowgate.common import gx_gate\n"
            "gx_gate.load_suite('finance_staged_postings')\n"
            "print('sqlalchemy' in sys.modules, 'great_expectations' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "True"]

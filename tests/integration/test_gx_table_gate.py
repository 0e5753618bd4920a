"""The table gate against a real PostgreSQL: the stack's own server (started if it is not
running, and then stopped again), a schema of this module's own, GX's postgres datasource.

Every check a partner suite uses runs as SQL over the whole table: regex, in-set, unique,
not-null, the column list, and a row count given as a suite parameter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from flowgate.common import gx_gate
from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import connections

pytestmark = pytest.mark.integration

ROWS = 50_000
DAY = date(2026, 6, 30)
# A value no check allows, planted in the bad table: it must appear in no evidence file.
PLANTED = "ZZ-PLANTED-Q7X9W"  # and no card number: it lands in the stack's WAL
COLUMNS = ["account_ref", "currency", "status", "value_date"]

SUITE = {
    "name": "partner_table_test",
    "meta": {"description": "the table gate's integration test"},
    "expectations": [
        {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": COLUMNS}},
        {"type": "expect_table_row_count_to_equal", "kwargs": {"value": {"$PARAMETER": "rows"}}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "account_ref"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "account_ref"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "account_ref", "regex": "^AC[0-9]{8}$"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "currency", "value_set": ["EUR", "USD"]}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "status"}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "value_date", "min_value": {"$PARAMETER": "day"}, "max_value": {"$PARAMETER": "day"}}},
    ],
}

# The clean table: ROWS accounts, all of the day. The bad one: the same, plus a row whose
# account ref is PLANTED twice over (unique, regex), a currency of PLANTED (in-set), a NULL
# status and a day outside the data interval.
TABLE_DDL = "create table {schema}.{table} (account_ref text, currency text, status text, value_date date)"
GOOD_ROWS = """
insert into {schema}.{table}
select 'AC' || lpad(i::text, 8, '0'), case when i %% 2 = 0 then 'EUR' else 'USD' end, 'booked', %(day)s
from generate_series(1, %(rows)s) as i
"""
BAD_ROWS = """
insert into {schema}.{table} values
    (%(planted)s, 'EUR', 'booked', %(day)s),
    (%(planted)s, %(planted)s, null, %(day)s::date + 1)
"""


def app_conninfo(cfg: StackConfig) -> str:
    """The warehouse as the flows reach it: the app role, as a libpq conninfo string,
    built the way flowgate.common.connections.postgres_dsn builds it."""
    conn = connections(cfg)["warehouse"]
    return make_conninfo(host=conn["host"], port=conn["port"], dbname=conn["schema"], user=conn["login"],
                         password=conn["password"], connect_timeout=10)


@dataclass(frozen=True)
class Warehouse:
    """Where the tables are. The conninfo holds a password: kept out of pytest's reports."""

    schema: str
    conninfo: str = field(repr=False)
    password: str = field(repr=False)


@pytest.fixture(scope="module")
def warehouse():
    """A schema of this module's own in the stack's warehouse, reached as the app role."""
    with stack.running(StackConfig.from_env(), {"postgres"}) as cfg:
        conninfo = app_conninfo(cfg)
        name = f"gx_table_gate_{os.getpid()}"
        schema = sql.Identifier(name)
        try:  # dropped however the setup or the tests end
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema))
                conn.execute(sql.SQL("create schema {}").format(schema))
                for table, bad in (("clean", False), ("bad", True)):
                    names = {"schema": schema, "table": sql.Identifier(table)}
                    conn.execute(sql.SQL(TABLE_DDL).format(**names))
                    conn.execute(sql.SQL(GOOD_ROWS).format(**names), {"day": DAY, "rows": ROWS})
                    if bad:
                        conn.execute(sql.SQL(BAD_ROWS).format(**names), {"planted": PLANTED, "day": DAY})
            yield Warehouse(name, conninfo, connections(cfg)["warehouse"]["password"])
        finally:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema))


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suites") / "partner_table_test.json"
    path.write_text(json.dumps(SUITE, indent=2))
    return path


@pytest.fixture(scope="module")
def suite(suite_file) -> gx_gate.Suite:
    return gx_gate.load_suite(suite_file, for_table_gate=True)


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("table_gate_docs")


@pytest.fixture(scope="module")
def clean(warehouse, suite, docs) -> gx_gate.GateResult:
    conninfo, schema = warehouse.conninfo, warehouse.schema
    return gx_gate.run_table_gate(suite, conninfo, schema, "clean", docs, "clean",
                                  suite_parameters={"rows": ROWS, "day": DAY})


@pytest.fixture(scope="module")
def bad(warehouse, suite, docs) -> gx_gate.GateResult:
    conninfo, schema = warehouse.conninfo, warehouse.schema
    return gx_gate.run_table_gate(suite, conninfo, schema, "bad", docs, "bad",
                                  suite_parameters={"rows": ROWS, "day": DAY})


def by_expectation(result: gx_gate.GateResult) -> dict[tuple[str, str | None], dict]:
    return {(f["expectation"], f["column"]): f for f in result.failed}


def evidence_files(result: gx_gate.GateResult) -> list[Path]:
    return [p for p in result.docs_index.parent.rglob("*") if p.is_file()]


def test_a_clean_table_passes_every_check(clean, suite, warehouse):
    assert clean.success, clean.summary()
    assert clean.evaluated == len(SUITE["expectations"]) == 8
    assert clean.statistics["rows"] == ROWS
    assert clean.statistics["table"] == f"{warehouse.schema}.clean"
    assert clean.statistics["suite_parameters"] == {"rows": ROWS, "day": "2026-06-30"}
    assert (clean.suite_file, clean.suite_sha256) == (str(suite.path), suite.sha256)
    assert clean.to_dict()["suite_sha256"] == suite.sha256
    kept = json.loads((clean.docs_index.parent / gx_gate.RESULT_FILE).read_text())
    assert kept == clean.to_dict()
    assert suite.name in clean.docs_index.read_text()


def test_a_bad_table_fails_each_broken_check_with_its_counts(bad):
    assert not bad.success
    found = by_expectation(bad)
    assert set(found) == {
        ("expect_table_row_count_to_equal", None),
        ("expect_column_values_to_be_unique", "account_ref"),
        ("expect_column_values_to_match_regex", "account_ref"),
        ("expect_column_values_to_be_in_set", "currency"),
        ("expect_column_values_to_not_be_null", "status"),
        ("expect_column_values_to_be_between", "value_date"),
    }
    assert found[("expect_table_row_count_to_equal", None)]["observed_value"] == ROWS + 2
    assert found[("expect_column_values_to_be_unique", "account_ref")]["unexpected_count"] == 2
    assert found[("expect_column_values_to_match_regex", "account_ref")]["unexpected_count"] == 2
    assert found[("expect_column_values_to_be_in_set", "currency")]["unexpected_count"] == 1
    assert found[("expect_column_values_to_not_be_null", "status")]["unexpected_count"] == 1
    assert found[("expect_column_values_to_be_between", "value_date")]["unexpected_count"] == 1
    assert found[("expect_column_values_to_be_between", "value_date")]["kwargs"]["min_value"] == "2026-06-30"
    with pytest.raises(gx_gate.GateFailed):
        bad.raise_if_failed()


def test_no_offending_value_and_no_password_reaches_the_evidence(bad, warehouse):
    """unexpected_sample=0, the table gate's default: counts only, in every file."""
    password = warehouse.password
    assert all("unexpected_values" not in f for f in bad.failed)
    assert PLANTED not in json.dumps(bad.to_dict()) and PLANTED not in bad.summary()
    files = evidence_files(bad)
    assert any(p.suffix == ".html" for p in files) and any(p.name == gx_gate.RESULT_FILE for p in files)
    for secret in (PLANTED, password):
        assert [p for p in files if secret.encode() in p.read_bytes()] == []


def test_a_sample_shows_the_values_when_asked_for(warehouse, suite, tmp_path):
    """The check above would see a leak: with a sample, the planted value is there."""
    conninfo, schema = warehouse.conninfo, warehouse.schema
    shown = gx_gate.run_table_gate(suite, conninfo, schema, "bad", tmp_path, "shown",
                                   suite_parameters={"rows": ROWS, "day": DAY}, unexpected_sample=3)
    assert by_expectation(shown)[("expect_column_values_to_be_in_set", "currency")]["unexpected_values"] == [PLANTED]
    assert any(PLANTED.encode() in p.read_bytes() for p in evidence_files(shown) if p.suffix == ".html")


def test_the_row_count_is_whatever_the_caller_expects(warehouse, suite, tmp_path):
    conninfo, schema = warehouse.conninfo, warehouse.schema
    result = gx_gate.run_table_gate(suite, conninfo, schema, "clean", tmp_path, "count",
                                    suite_parameters={"rows": ROWS - 1, "day": DAY})
    (failure,) = result.failed
    assert failure["expectation"] == "expect_table_row_count_to_equal"
    assert (failure["kwargs"]["value"], failure["observed_value"]) == (ROWS - 1, ROWS)


def test_a_missing_parameter_fails_closed(warehouse, suite, tmp_path):
    conninfo, schema = warehouse.conninfo, warehouse.schema
    with pytest.raises(gx_gate.MissingSuiteParameter, match=r"\['rows'\]"):
        gx_gate.run_table_gate(suite, conninfo, schema, "clean", tmp_path, "no-rows", suite_parameters={"day": DAY})


def test_a_missing_table_is_an_error_not_a_verdict(warehouse, suite, tmp_path):
    conninfo, schema = warehouse.conninfo, warehouse.schema
    with pytest.raises(Exception, match="nosuchtable"):
        gx_gate.run_table_gate(suite, conninfo, schema, "nosuchtable", tmp_path, "missing",
                               suite_parameters={"rows": 1, "day": DAY})


def test_the_gate_leaves_no_connection_open(clean, bad, warehouse):
    conninfo = warehouse.conninfo
    with psycopg.connect(conninfo) as conn:
        (open_,) = conn.execute("select count(*) from pg_stat_activity where application_name = %s",
                                (gx_gate.APPLICATION_NAME,)).fetchone()
    assert open_ == 0


def _run_in_fresh_process(code: str, warehouse: Warehouse) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter; the conninfo in its environment, not on a command line."""
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "GATE_CONNINFO": warehouse.conninfo},
                          capture_output=True, text=True, check=False, timeout=300)


def test_in_a_fresh_process_load_suite_then_table_gate_works(warehouse, suite_file, tmp_path):
    """The order a partner task takes, outside Airflow (nothing imported SQLAlchemy yet):
    a suite loaded for the table gate keeps GX's SQL support, so the gate runs in-process."""
    done = _run_in_fresh_process(
        "import os, sys, datetime\n"
        "assert 'great_expectations' not in sys.modules and 'sqlalchemy' not in sys.modules\n"
        "from flowgate.common import gx_gate\n"
        f"suite = gx_gate.load_suite({str(suite_file)!r}, for_table_gate=True)\n"
        "assert gx_gate._has_sql()\n"
        "result = gx_gate.run_table_gate(suite, os.environ['GATE_CONNINFO'],"
        f" {warehouse.schema!r}, 'clean', {str(tmp_path)!r}, 'fresh',"
        f" suite_parameters={{'rows': {ROWS}, 'day': datetime.date(2026, 6, 30)}})\n"
        "assert result.success, result.summary()\n"
        "print(result.to_dict()['suite_sha256'])\n",
        warehouse,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [gx_gate.load_suite(suite_file).sha256]


def test_in_a_fresh_process_a_pandas_first_gx_still_runs_the_table_gate(warehouse, suite_file, tmp_path):
    """GX imported by a pandas gate first (SQLAlchemy hidden): the table gate runs in a
    child process and gives the same verdict, evidence and suite version."""
    done = _run_in_fresh_process(
        "import os, datetime, json; from flowgate.common import gx_gate\n"
        "gx_gate.run_gate('p', __import__('pandas').DataFrame({'c': [1]}), gx_gate.not_null('c'),"
        f" {str(tmp_path)!r}, 'pandas')\n"
        "assert not gx_gate._has_sql()\n"
        f"suite = gx_gate.load_suite({str(suite_file)!r})\n"
        "for table in ('clean', 'bad'):\n"
        "    result = gx_gate.run_table_gate(suite, os.environ['GATE_CONNINFO'],"
        f" {warehouse.schema!r}, table, {str(tmp_path)!r}, table,"
        f" suite_parameters={{'rows': {ROWS}, 'day': datetime.date(2026, 6, 30)}})\n"
        "    print(json.dumps(result.to_dict()))\n",
        warehouse,
    )
    assert done.returncode == 0, done.stderr
    assert "running the table gate in a child process" in done.stderr
    clean, bad = (json.loads(line) for line in done.stdout.splitlines())
    assert clean["success"] and clean["suite_sha256"] == gx_gate.load_suite(suite_file).sha256
    assert clean["statistics"]["rows"] == ROWS and Path(clean["docs_index"]).is_file()
    assert not bad["success"] and len(bad["failed"]) == 6
    assert json.loads((tmp_path / "bad" / gx_gate.RESULT_FILE).read_text()) == bad

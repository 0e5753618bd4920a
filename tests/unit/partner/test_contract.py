"""Contracts parse strictly, refuse unsafe actions, and their suites stay in step."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import yaml
from pydantic import ValidationError

from flowgate.partner.contract import IsoWeek, contracts_dir, load_contract, parse_contract, partners
from flowgate.partner.runs import reprocess_request, week_of
from flowgate.partner.suite import suite_file, suite_text


def test_there_are_at_least_two_partners_with_different_formats():
    contracts = [load_contract(p) for p in partners()]
    assert len(contracts) >= 2
    assert {c.format.pgp for c in contracts} == {True, False}
    assert len({c.format.delimiter for c in contracts}) >= 2


@pytest.mark.parametrize("partner", partners())
def test_the_committed_suite_is_the_one_the_contract_gives(partner):
    contract = load_contract(partner)
    assert suite_file(contract).read_text() == suite_text(contract), (
        f"{suite_file(contract).name} is out of step with {partner}.yaml: run `flowgate partner suite --write`")


@pytest.mark.parametrize("partner", partners())
def test_no_pii_or_restricted_column_reaches_the_warehouse_readable(partner):
    for column in load_contract(partner).loaded_columns:
        if column.classification in ("pii", "restricted"):
            assert column.action in ("tokenize", "encrypt"), column.name


def _variant(change) -> bytes:
    data = yaml.safe_load((contracts_dir() / "acme.yaml").read_text())
    change(data)
    return yaml.safe_dump(data).encode()


@pytest.mark.parametrize("change, message", [
    (lambda d: d["columns"][-1].update(action="keep"), "tokenize, encrypt or drop"),
    (lambda d: d["columns"].append(dict(d["columns"][0])), "listed twice"),
    (lambda d: d["delivery"].update(file_name="acme.csv.gz"), "{week}"),
    (lambda d: d.update(key=["contact_phone"]), "key column"),
    (lambda d: d["columns"][0].update(colour="red"), "Extra inputs"),
])
def test_an_unsafe_or_sloppy_contract_is_refused(change, message):
    with pytest.raises(ValidationError, match=message):
        parse_contract(_variant(change))


def test_iso_weeks_parse_print_and_name_files():
    week = IsoWeek.parse("2026-W47")
    assert (week.year, week.week, str(week), week.compact) == (2026, 47, "2026-W47", "2026W47")
    assert week.monday == date(2026, 11, 16) and IsoWeek.parse("2026W47") == week
    assert IsoWeek.of(date(2027, 1, 1)) == IsoWeek(2026, 53), "1 Jan 2027 is in 2026's week 53"
    assert week.previous(2) == IsoWeek(2026, 45)
    assert load_contract("acme").file_name(week) == "acme_spend_2026W47.csv.gz"
    with pytest.raises(ValueError):
        IsoWeek(2025, 53)


def test_a_run_takes_its_week_from_the_param_or_its_data_interval():
    start = datetime(2026, 11, 16, 6, tzinfo=timezone.utc)
    assert week_of({}, start) == IsoWeek(2026, 47)
    assert week_of({"week": "2026-W40"}, start) == IsoWeek(2026, 40)
    with pytest.raises(ValueError, match="week param"):
        week_of({"week": None}, None)


def test_a_reprocess_says_who_and_why_or_is_refused():
    class Run:
        triggering_user_name = "analyst.anna"

    assert reprocess_request({"reprocess": False}, Run()) == (None, None)
    assert reprocess_request({"reprocess": True, "reprocess_reason": "partner re-sent fixed totals"}, Run()) == (
        "analyst.anna", "partner re-sent fixed totals")
    with pytest.raises(ValueError, match="reprocess_reason"):
        reprocess_request({"reprocess": True, "reprocess_reason": " "}, Run())

"""Typed envelope columns: a value of another type leaves its column null, stays in the
payload and is reported as a conflict; the load never fails on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flowgate.customer360.mobile_schema import (
    KafkaCoordinates, TypeConflict, load_schema, parse_timestamp, read_event, typed_envelope)

SCHEMA = load_schema()
IDENTITY_KEY = "test-identity-key"


def _event(**changes) -> dict:
    event = {"event_id": "e1", "device_id": "d1", "user_id": "100007", "event_name": "login",
             "ts": "2026-11-30T09:00:00.250Z", "app_version": "2.0.0", "properties": {"screen": "login"}}
    return {**event, **changes}


def test_a_well_typed_event_fills_every_column():
    columns, conflicts = typed_envelope(_event(), SCHEMA)
    assert conflicts == []
    assert columns == {"event_id": "e1", "device_id": "d1", "user_id": "100007", "event_name": "login",
                       "event_ts": datetime(2026, 11, 30, 9, 0, 0, 250_000, tzinfo=UTC), "app_version": "2.0.0"}


def test_a_numeric_user_id_leaves_the_column_null_and_is_a_conflict():
    columns, conflicts = typed_envelope(_event(user_id=100007), SCHEMA)
    assert columns["user_id"] is None and columns["event_name"] == "login"
    assert conflicts == [TypeConflict("user_id", "user_id", "string", "number", "a number, not a string")]


def test_the_raw_value_stays_in_the_payload_as_received():
    raw = json.dumps(_event(user_id=100007))
    examined = read_event(raw, KafkaCoordinates("mobile.events", 0, 1), SCHEMA, IDENTITY_KEY)
    assert examined.payload_text == raw and json.loads(examined.payload_text)["user_id"] == 100007
    assert len(examined.conflicts) == 1


def test_a_null_user_id_before_login_is_no_conflict():
    columns, conflicts = typed_envelope(_event(user_id=None), SCHEMA)
    assert columns["user_id"] is None and conflicts == []


def test_a_timestamp_that_does_not_parse_or_has_no_offset_is_a_conflict():
    for bad in ("yesterday", "2026-11-30T09:00:00"):
        columns, (conflict,) = typed_envelope(_event(ts=bad), SCHEMA)
        assert columns["event_ts"] is None and conflict.column == "event_ts"
    columns, (conflict,) = typed_envelope(_event(ts=1764493200000), SCHEMA)  # epoch ms: a number
    assert (conflict.expected_type, conflict.observed_type) == ("string", "number")


def test_timestamps_with_an_offset_become_utc_instants():
    assert parse_timestamp("2026-11-30T10:00:00+01:00") == datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert parse_timestamp("2026-11-30T09:00:00") is None


def test_several_conflicts_in_one_event_are_each_reported():
    _, conflicts = typed_envelope(_event(user_id=7, device_id=["x"], app_version=3), SCHEMA)
    assert {c.path for c in conflicts} == {"user_id", "device_id", "app_version"}


def test_an_event_whose_app_version_is_odd_still_names_a_release_for_its_drift():
    examined = read_event(json.dumps(_event(app_version=3)), KafkaCoordinates("t", 0, 0), SCHEMA, IDENTITY_KEY)
    assert examined.app_version == "unknown"

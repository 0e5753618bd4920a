"""Drift against the declared schema: new, changed and missing fields, one row per field,
first seen at the earliest event whatever the order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flowgate.customer360.mobile_app import MobileApp
from flowgate.customer360.mobile_schema import (
    MISSING_FIELD, NEW_FIELD, TYPE_CHANGE, FieldDrift, KafkaCoordinates, field_drift, field_types, load_schema,
    parse_schema, read_event, schema_file, summarise_drift)

SCHEMA = load_schema()
IDENTITY_KEY = "test-identity-key"
START = datetime(2026, 11, 30, 9, tzinfo=UTC)


def _event(**changes) -> dict:
    event = {"event_id": "e1", "device_id": "d1", "user_id": None, "event_name": "app_open",
             "ts": "2026-11-30T09:00:00.000Z", "app_version": "1.0.0", "properties": {"screen": "home"}}
    return {**event, **changes}


def _read(event: dict, offset: int = 0):
    return read_event(json.dumps(event), KafkaCoordinates("mobile.events", 0, offset), SCHEMA, IDENTITY_KEY)


def test_the_schema_file_describes_release_1_and_carries_its_digest():
    assert SCHEMA.describes_app_version == "1.0.0" and SCHEMA.owner == "customer-360"
    assert SCHEMA.sha256 == parse_schema(schema_file().read_bytes()).sha256 and len(SCHEMA.sha256) == 64
    assert {s.column for s in SCHEMA.typed_fields().values()} == {
        "event_id", "device_id", "user_id", "event_name", "event_ts", "app_version"}


def test_release_1_events_do_not_drift_once_read_by_the_ingest():
    # The ingest keys the login's email before it compares (properties.email_key is expected).
    events = MobileApp(seed=1).events("1.0.0", 20, START)
    assert any(e["event_name"] == "login" for e in events)
    for offset, event in enumerate(events):
        assert _read(event, offset).drift == []


def test_field_paths_enter_objects_and_name_their_types():
    assert field_types({"a": 1, "b": {"c": "x", "d": [1]}, "e": None, "f": True}) == {
        "a": "number", "b": "object", "b.c": "string", "b.d": "array", "e": "null", "f": "boolean"}


def test_a_new_field_a_nested_object_a_type_change_and_a_missing_field():
    event = _event(user_id=7, network="wifi", device={"os": "ios"}, properties={"screen_name": "home"})
    assert sorted(field_drift(event, SCHEMA), key=lambda d: d.path) == [
        FieldDrift("device", NEW_FIELD, "object"), FieldDrift("device.os", NEW_FIELD, "string"),
        FieldDrift("network", NEW_FIELD, "string"), FieldDrift("properties.screen", MISSING_FIELD, "absent", "string"),
        FieldDrift("properties.screen_name", NEW_FIELD, "string"), FieldDrift("user_id", TYPE_CHANGE, "number", "string")]


def test_null_is_drift_only_where_the_schema_does_not_allow_it():
    assert field_drift(_event(user_id=None), SCHEMA) == []
    assert field_drift(_event(event_name=None), SCHEMA) == [FieldDrift("event_name", TYPE_CHANGE, "null", "string")]


def test_a_timestamp_that_does_not_parse_is_a_type_change_too():
    (drift,) = _read(_event(ts="yesterday")).drift
    assert (drift.path, drift.change, drift.observed_type) == ("ts", TYPE_CHANGE, "string (not date-time)")


def test_a_batch_lists_each_drift_once_with_first_seen_its_release_and_types():
    app = MobileApp(seed=3)
    v2 = app.events("2.0.0", 5, START)
    v3 = app.events("3.0.0", 5, START.replace(hour=10))
    examined = [_read(e, i) for i, e in enumerate(v3 + v2)]  # out of order on purpose
    rows = {(r.path, r.change): r for r in summarise_drift(examined)}
    network = rows[("network", NEW_FIELD)]
    assert network.app_version == "2.0.0" and network.first_seen == min(
        datetime.fromisoformat(e["ts"]) for e in v2)
    assert network.last_seen == max(datetime.fromisoformat(e["ts"]) for e in v3)
    assert network.events == len(v2) + len(v3) and network.observed_types == {"string"}
    assert rows[("device", NEW_FIELD)].app_version == "3.0.0"
    assert rows[("user_id", TYPE_CHANGE)].observed_types == {"number"}
    assert rows[("user_id", TYPE_CHANGE)].expected_type == "string"
    assert len(rows) == len(summarise_drift(examined))


def test_observed_types_accumulate_per_field():
    rows = summarise_drift([_read(_event(event_id="a", network="wifi")), _read(_event(event_id="b", network=4))])
    (network,) = [r for r in rows if r.path == "network"]
    assert network.observed_types == {"string", "number"}


def test_messages_that_are_not_events_with_an_id_are_rejected_with_a_reason():
    at = KafkaCoordinates("mobile.events", 1, 9)
    assert "not JSON" in read_event("{oops", at, SCHEMA, IDENTITY_KEY).reason
    assert "not a JSON object" in read_event("[1, 2]", at, SCHEMA, IDENTITY_KEY).reason
    assert "no event_id" in read_event(json.dumps(_event(event_id="")), at, SCHEMA, IDENTITY_KEY).reason
    assert "no event_id" in read_event(json.dumps(_event(event_id=5)), at, SCHEMA, IDENTITY_KEY).reason
    assert "jsonb" in read_event(json.dumps(_event(device_id="a\u0000b")), at, SCHEMA, IDENTITY_KEY).reason
    assert read_event(None, at, SCHEMA, IDENTITY_KEY).reason == "empty message"
    assert read_event("{oops", at, SCHEMA, IDENTITY_KEY).raw == "{oops"  # kept whole

"""The simulated mobile app: deterministic, drifting the way each release should, with
users who log in part-way and emails the CRM side can match."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowgate.customer360.customers import DEFAULT_SEED, customer
from flowgate.customer360.identity import normalised_email
from flowgate.customer360.mobile_app import (
    APP_VERSIONS, MobileApp, encode, resent, user_email, user_id_of)

START = datetime(2026, 11, 30, 9, tzinfo=UTC)


def test_the_same_seed_gives_the_same_events_and_another_seed_others():
    assert MobileApp(seed=3).events("1.0.0", 5, START) == MobileApp(seed=3).events("1.0.0", 5, START)
    assert MobileApp(seed=3).events("1.0.0", 5, START) != MobileApp(seed=4).events("1.0.0", 5, START)


def test_event_ids_are_unique_across_releases_and_hours():
    app = MobileApp(seed=1)
    ids = [e["event_id"] for v in APP_VERSIONS for h in (9, 10) for e in app.events(v, 20, START.replace(hour=h))]
    assert len(ids) == len(set(ids))


def test_release_1_sends_exactly_the_envelope_fields():
    for event in MobileApp(seed=1).events("1.0.0", 10, START):
        assert set(event) == {"event_id", "device_id", "user_id", "event_name", "ts", "app_version", "properties"}
        assert event["app_version"] == "1.0.0" and "screen" in event["properties"]
        assert event["user_id"] is None or isinstance(event["user_id"], str)


def test_release_2_adds_network_and_renames_the_screen_property():
    for event in MobileApp(seed=1).events("2.0.0", 10, START):
        assert event["network"] in ("wifi", "cellular")
        assert "screen_name" in event["properties"] and "screen" not in event["properties"]


def test_release_3_sends_user_ids_as_numbers_and_a_nested_device_object():
    events = MobileApp(seed=1).events("3.0.0", 20, START)
    user_ids = [e["user_id"] for e in events if e["user_id"] is not None]
    assert user_ids and all(isinstance(u, int) for u in user_ids)
    assert all(set(e["device"]) == {"os", "os_version", "model"} for e in events)


def test_the_same_happening_keeps_its_identity_across_releases():
    app = MobileApp(seed=2)
    one = app.happenings("1.0.0", 3, START)
    assert [h.device_id for h in one] == [h.device_id for h in MobileApp(seed=2).happenings("1.0.0", 3, START)]
    # A release changes the spelling of the user id, not whose it is.
    as_v1 = MobileApp(seed=2).events("1.0.0", 8, START)
    ids_v1 = {e["user_id"] for e in as_v1 if e["user_id"]}
    assert ids_v1 <= {user_id_of(n) for n in range(app.users)}


def test_some_sessions_start_anonymous_and_log_in_part_way():
    events = MobileApp(seed=5).events("1.0.0", 40, START)
    by_device: dict[str, list[dict]] = {}
    for e in events:
        by_device.setdefault(e["device_id"], []).append(e)
    mid_session = [evs for evs in by_device.values()
                   if any(e["event_name"] == "login" for e in evs) and evs[0]["user_id"] is None]
    assert mid_session
    for evs in mid_session:
        login = next(i for i, e in enumerate(evs) if e["event_name"] == "login")
        assert evs[login]["user_id"] is not None and "email" in evs[login]["properties"]


def test_a_login_carries_the_users_email_as_typed():
    app = MobileApp(seed=5)
    for e in app.events("1.0.0", 40, START):
        if e["event_name"] == "login":
            n = int(e["user_id"]) - 100_000
            assert e["properties"]["email"] == user_email(n)


def test_devices_beyond_the_users_never_log_in():
    app = MobileApp(seed=5, users=5, devices=20)
    anonymous = set(app.device_ids[5:])
    assert all(e["user_id"] is None for e in app.events("1.0.0", 60, START) if e["device_id"] in anonymous)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 42])
def test_user_n_logs_in_with_the_email_of_crm_contact_n(n):
    assert normalised_email(user_email(n)) == normalised_email(customer(DEFAULT_SEED, n, companies=1).email)


def test_the_crm_seed_decides_the_emails():
    assert normalised_email(user_email(7, crm_seed=1)) == normalised_email(customer(1, 7, companies=1).email)


def test_user_emails_vary_in_case_and_whitespace_so_normalisation_matters():
    raw = [user_email(n) for n in range(4)]
    assert sum(r != normalised_email(r) for r in raw) == 3


def test_resent_is_a_deterministic_sample_with_the_same_event_ids():
    events = MobileApp(seed=1).events("1.0.0", 30, START)
    again = resent(events, 0.2, seed=9)
    assert again == resent(events, 0.2, seed=9) and 0 < len(again) < len(events)
    assert {e["event_id"] for e in again} <= {e["event_id"] for e in events}


def test_an_unknown_release_is_refused():
    with pytest.raises(ValueError, match="unknown app version"):
        MobileApp().events("9.9.9", 1, START)


def test_events_are_encoded_as_compact_utf8_json():
    event = MobileApp(seed=1).events("1.0.0", 1, START)[0]
    assert encode(event).startswith(b'{"event_id":')

"""What the owning team reads about drift: which field, how, when, which release — no values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowgate.customer360.drift_alerts import ALERTNAME, DriftNotice, drift_alert, renamed_from

SEEN = datetime(2026, 11, 30, 11, 1, 21, tzinfo=UTC)


def _notice(**changes) -> DriftNotice:
    fields = dict(field_path="user_id", change="type_change", expected_type="string", observed_types=["number"],
                  first_seen=SEEN, app_version="3.0.0", type_conflicts=29)
    return DriftNotice(**{**fields, **changes})


def test_the_alert_names_field_change_release_types_and_conflicts():
    alert = drift_alert(_notice(), owner="customer-360", env="local", topic="mobile.events")
    assert alert.alertname == ALERTNAME and alert.severity == "warning"
    assert alert.extra_labels == {"team": "customer-360", "field": "user_id", "change": "type_change"}
    assert "type change `user_id` first seen 2026-11-30T11:01:21+00:00 in app 3.0.0" in alert.summary
    assert "(observed number, expected string)" in alert.summary and "29 event(s)" in alert.summary
    assert alert.runbook_url.endswith("customer_360_hourly.md#schema-drift")


def test_each_release_is_its_own_alert_group():
    # Alertmanager groups by alertname, rule, service, env: one message per release that drifted.
    v2 = drift_alert(_notice(field_path="network", change="new_field", app_version="2.0.0"),
                     owner="customer-360", env="local", topic="mobile.events")
    v3 = drift_alert(_notice(), owner="customer-360", env="local", topic="mobile.events")
    assert (v2.service, v3.service) == ("mobile-app@2.0.0", "mobile-app@3.0.0")
    assert v2.labels != v3.labels


def test_a_new_field_says_no_expected_type_and_no_conflicts():
    alert = drift_alert(_notice(field_path="device", change="new_field", expected_type=None,
                                observed_types=["object"], type_conflicts=0),
                        owner="customer-360", env="local", topic="mobile.events")
    assert "new field `device`" in alert.summary and "(observed object)" in alert.summary
    assert "typed column" not in alert.summary


@pytest.mark.parametrize("change", ["new_field", "type_change", "missing_field"])
def test_every_change_kind_has_words(change):
    assert drift_alert(_notice(change=change), owner="t", env="local", topic="mobile.events").summary


def test_a_new_field_beside_a_missing_one_of_its_type_in_the_same_release_is_flagged_as_a_rename():
    notices = [_notice(field_path="properties.screen", change="missing_field", observed_types=["absent"],
                       app_version="2.0.0"),
               _notice(field_path="properties.screen_name", change="new_field", expected_type=None,
                       observed_types=["string"], app_version="2.0.0"),
               _notice(field_path="network", change="new_field", expected_type=None, observed_types=["string"],
                       app_version="2.0.0"),  # another object: not a rename of properties.screen
               _notice(field_path="properties.coupon", change="new_field", expected_type=None,
                       observed_types=["string"], app_version="3.0.0")]  # another release
    assert renamed_from(notices) == {"properties.screen_name": "properties.screen"}
    alert = drift_alert(notices[1], owner="t", env="local", topic="mobile.events", renames="properties.screen")
    assert "perhaps a rename of `properties.screen`" in alert.summary

"""The times an alert goes to Alertmanager with: startsAt from event time, endsAt from the
wall clock, and never a start in the future (a host whose clock runs ahead)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flowgate.logs.rules import AlertState
from flowgate.logs.stream import alert_of

LABELS = {"alertname": "ErrorBurst", "rule": "error_burst", "service": "ledger", "env": "test", "severity": "critical"}


def state(starts_at: float) -> AlertState:
    return AlertState(LABELS, {"summary": "errors"}, starts_at=starts_at)


def test_a_firing_alert_starts_at_its_event_time_and_has_no_end():
    started = time.time() - 120
    alert = alert_of(state(started)).to_api()
    assert datetime.fromisoformat(alert["startsAt"]) == datetime.fromtimestamp(started, UTC)
    assert "endsAt" not in alert


def test_a_resolution_ends_now():
    before = datetime.now(UTC)
    alert = alert_of(state(time.time() - 120), ended=True).to_api()
    assert before <= datetime.fromisoformat(alert["endsAt"]) <= datetime.now(UTC) + timedelta(seconds=1)


def test_an_alert_from_a_clock_ahead_starts_now_and_its_resolution_is_not_held_back():
    """Ten minutes ahead: an end after such a start would keep the alert firing in
    Alertmanager for ten minutes after the engine resolved it."""
    ahead = time.time() + 600
    before = datetime.now(UTC)
    firing = alert_of(state(ahead)).to_api()
    resolved = alert_of(state(ahead), ended=True).to_api()
    after = datetime.now(UTC)
    assert before <= datetime.fromisoformat(firing["startsAt"]) <= after
    starts, ends = datetime.fromisoformat(resolved["startsAt"]), datetime.fromisoformat(resolved["endsAt"])
    assert starts < ends <= after + timedelta(seconds=1)

"""The Alertmanager client's side of the contract: the v2 payload, the checks before
posting, and an error that names every alert it could not deliver."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from flowgate.common.alertmanager import (
    MAX_SAMPLE_CHARS, Alert, AlertmanagerClient, AlertmanagerUnavailable,
)


def _alert(**overrides) -> Alert:
    fields = dict(alertname="ErrorBurst", rule="threshold-errors", service="payments-api", severity="critical",
                  env="local", summary="52 errors in 60 s", sample="ERROR timeout talking to ledger",
                  runbook_url="https://runbooks/app_logs_stream.md#error-burst",
                  opensearch_url="http://127.0.0.1:9200/app-logs-*/_search?q=service:payments-api")
    return Alert(**{**fields, **overrides})


def test_labels_identify_the_alert_and_annotations_carry_what_on_call_reads():
    body = _alert(extra_labels={"host": "pod-7"}).to_api()
    assert body["labels"] == {"host": "pod-7", "alertname": "ErrorBurst", "rule": "threshold-errors",
                              "service": "payments-api", "severity": "critical", "env": "local"}
    assert set(body["annotations"]) == {"summary", "sample", "runbook_url", "opensearch_url"}
    assert "endsAt" not in body and "startsAt" not in body, "firing, and Alertmanager stamps the start"


def test_extra_labels_cannot_override_the_grouping_labels():
    assert _alert(extra_labels={"service": "other"}).labels["service"] == "payments-api"


def test_resolving_stamps_ends_at_and_keeps_the_labels():
    at = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    firing = _alert(starts_at=at - timedelta(minutes=3))
    body = firing.resolved(at).to_api()
    assert body["endsAt"] == "2026-01-05T10:00:00+00:00"
    assert body["startsAt"] == "2026-01-05T09:57:00+00:00"
    assert body["labels"] == firing.to_api()["labels"]


def test_a_huge_sample_is_cut_and_empty_annotations_are_left_out():
    body = _alert(sample="x" * 1_000_000, runbook_url="").to_api()
    assert len(body["annotations"]["sample"]) == MAX_SAMPLE_CHARS
    assert "runbook_url" not in body["annotations"]


@pytest.mark.parametrize("overrides, message", [
    ({"service": ""}, "empty"),
    ({"severity": "page-me"}, "severity"),
    ({"starts_at": datetime(2026, 1, 5, 10, 0)}, "timezone"),
])
def test_alerts_alertmanager_would_mangle_are_refused_before_posting(overrides, message):
    with pytest.raises(ValueError, match=message):
        _alert(**overrides)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_unreachable_alertmanager_names_every_undelivered_alert():
    alerts = [_alert(), _alert(service="ledger", severity="warning")]
    with AlertmanagerClient(f"http://127.0.0.1:{_closed_port()}", attempts=2, backoff_s=0.01) as client:
        with pytest.raises(AlertmanagerUnavailable) as caught:
            client.fire(alerts)
    err = caught.value
    assert err.alerts == tuple(alerts), "the caller re-posts exactly these"
    assert "2 alert(s) not delivered" in str(err)
    assert "ErrorBurst/threshold-errors/payments-api/local/critical" in str(err)
    assert "ErrorBurst/threshold-errors/ledger/local/warning" in str(err)


def test_undelivered_resolutions_stay_resolutions():
    with AlertmanagerClient(f"http://127.0.0.1:{_closed_port()}", attempts=1) as client:
        with pytest.raises(AlertmanagerUnavailable) as caught:
            client.resolve([_alert()])
    (pending,) = caught.value.alerts
    assert pending.ends_at is not None, "re-posting must resolve, not fire again"


def test_an_alert_read_back_from_its_api_body_is_the_same_alert():
    from datetime import UTC, datetime

    from flowgate.common.alertmanager import Alert

    alert = Alert(alertname="A", rule="threshold", service="s", severity="warning", env="e", summary="sum",
                  sample="x", runbook_url="r", opensearch_url="o", starts_at=datetime(2026, 1, 1, tzinfo=UTC),
                  ends_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC), generator_url="g", extra_labels={"fingerprint": "F"})
    assert Alert.from_api(alert.to_api()) == alert
    assert Alert.of(alert.labels, alert.to_api()["annotations"]).extra_labels == {"fingerprint": "F"}

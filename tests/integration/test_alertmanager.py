"""Alerts through the stack's real Alertmanager to the alert sink: grouped, deduplicated,
resolved, and delivered after an Alertmanager outage (the issue's "Alertmanager stopped")."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from flowgate.common.alertmanager import Alert, AlertmanagerClient, AlertmanagerUnavailable, AlertsRejected
from flowgate.devstack import alertmanager, process, stack
from flowgate.devstack.env import connections
from flowgate.devstack.services import alerts_file

pytestmark = pytest.mark.integration

# Alertmanager's group_wait (2 s) plus delivery; a changed group goes out within group_interval (10 s).
FIRST_MESSAGE_S = 10
CHANGE_MESSAGE_S = 20


@pytest.fixture(scope="module")
def am_stack(stack_config):
    with stack.running(stack_config, {"alert-sink", "alertmanager"}) as cfg:
        yield cfg


@pytest.fixture
def client(am_stack, monkeypatch):
    # Through the connection, as a task or a stream finds it.
    monkeypatch.setenv("AIRFLOW_CONN_ALERTMANAGER", json.dumps(connections(am_stack)["alertmanager"]))
    with AlertmanagerClient.from_connection(attempts=2, backoff_s=0.05) as client:
        yield client


def _alert(alertname: str, **overrides) -> Alert:
    fields = dict(alertname=alertname, rule="threshold-errors", service="payments-api", severity="critical",
                  env="local", summary="52 errors in 60 s", sample="ERROR ledger timeout after 2000 ms",
                  runbook_url="http://127.0.0.1:8080/runbooks/app_logs_stream.md#error-burst",
                  opensearch_url="http://127.0.0.1:9200/app-logs-*/_search?q=service:payments-api")
    return Alert(**{**fields, **overrides})


def _messages(cfg, alertname: str) -> list[dict]:
    """The Slack attachments the sink received for ``alertname``'s group, oldest first."""
    path = alerts_file(cfg)
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        for attachment in json.loads(line)["payload"].get("attachments", []):
            if f"] {alertname} on " in attachment["title"]:
                found.append(attachment)
    return found


def _wait_for(cfg, alertname: str, count: int, timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(messages := _messages(cfg, alertname)) >= count:
            return messages
        time.sleep(0.2)
    raise AssertionError(f"{count} message(s) for {alertname} expected within {timeout_s} s, got {_messages(cfg, alertname)}")


def test_two_alerts_of_one_group_make_one_message_then_one_resolved_message(am_stack, client):
    name = f"ErrorBurst{uuid.uuid4().hex[:8]}"
    critical, warning = _alert(name), _alert(name, severity="warning", summary="20 errors in 60 s")
    client.fire([critical, warning])
    client.fire([critical])  # the stream re-posts while firing: the same alert, not a new one

    (firing,) = _wait_for(am_stack, name, 1, FIRST_MESSAGE_S)
    assert firing["title"] == f"[FIRING:2] {name} on payments-api (local)"
    text = firing["text"]
    assert "52 errors in 60 s" in text and "20 errors in 60 s" in text
    assert "severity=critical" in text and "severity=warning" in text and "rule=threshold-errors" in text
    assert "Sample: `ERROR ledger timeout after 2000 ms`" in text
    assert critical.runbook_url in text and critical.opensearch_url in text

    client.fire([critical, warning])  # still firing, unchanged: on-call hears nothing new
    time.sleep(12)  # past group_interval, when a changed group would be sent again
    assert len(_messages(am_stack, name)) == 1, "a re-posted alert was sent again"

    client.resolve([critical, warning])
    resolved = _wait_for(am_stack, name, 2, CHANGE_MESSAGE_S)[1]
    assert resolved["title"] == f"[RESOLVED] {name} on payments-api (local)"
    assert resolved["text"].count("*RESOLVED*") == 2


def test_alerts_fired_while_alertmanager_is_down_are_delivered_once_it_is_back(am_stack, client):
    name = f"ServiceSilent{uuid.uuid4().hex[:8]}"
    silent = _alert(name, rule="absence", service="ledger", severity="warning", summary="no line for 120 s")
    service = alertmanager.alertmanager_service(am_stack)
    process.stop(service)
    try:
        with pytest.raises(AlertmanagerUnavailable) as caught:
            client.fire([silent])
        assert caught.value.alerts == (silent,)
        assert f"{name}/absence/ledger/local/warning" in str(caught.value)
    finally:
        process.start(service)

    client.post(caught.value.alerts)  # what the stream does with its pending alerts
    (message,) = _wait_for(am_stack, name, 1, FIRST_MESSAGE_S)
    assert message["title"] == f"[FIRING:1] {name} on ledger (local)"
    client.resolve([silent])  # leave nothing firing behind


def test_an_alert_alertmanager_refuses_is_named_and_not_retried(am_stack, client):
    now = datetime.now(UTC)
    backwards = _alert(f"Backwards{uuid.uuid4().hex[:8]}", starts_at=now, ends_at=now - timedelta(hours=1))
    with pytest.raises(AlertsRejected) as caught:
        client.post([backwards])
    assert caught.value.alerts == (backwards,) and caught.value.reason.startswith("400")

"""On-call alerts, sent through Airflow's Slack webhook notifier.

The ``alert_webhook`` connection is a Slack incoming webhook in production and the
stack's alert sink locally; the message always names the DAG, the run's date, the task
and the reason, so the alert alone says what broke.
"""

from __future__ import annotations

ALERT_CONN_ID = "alert_webhook"

FAILURE_TEXT = (
    ":red_circle: FlowGate failure: DAG `{{ dag.dag_id }}`, task `{{ ti.task_id }}` "
    "(try {{ ti.try_number }}), run `{{ run_id }}`, date {{ ds }}. "
    "Reason: {{ exception | string | truncate(500) }}. Log: {{ ti.log_url }}"
)


def failure_alert():
    """A notifier to use as ``on_failure_callback`` (imported lazily: DAG files parse fast)."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    return SlackWebhookNotifier(slack_webhook_conn_id=ALERT_CONN_ID, text=FAILURE_TEXT)

"""On-call alerts, sent through Airflow's Slack webhook notifier.

The ``alert_webhook`` connection is a Slack incoming webhook in production and the
stack's alert sink locally; the message always names the DAG, the run's date, the task
and the reason, so the alert alone says what broke.
"""

from __future__ import annotations

ALERT_CONN_ID = "alert_webhook"

FAILURE_TEXT = (
    ":red_circle: FlowGate failure: DAG `{{ dag.dag_id }}`, task `{{ ti.task_id }}` "
    "(try {{ ti.try_number }}), run `{{ run_id }}`, date {{ ds | default('none: a manual run') }}. "
    "Reason: {{ exception | string | truncate(500) }}. Log: {{ ti.log_url }}"
)


# `ds` is undefined in a run without a logical date (Airflow 3's manual runs): the
# template must render anyway, or the notifier drops the alert with only a log line.


def alert_on_failure(context) -> None:
    """``on_failure_callback``: tell on-call, through Airflow's Slack webhook notifier."""
    send_alert(context, FAILURE_TEXT)


def send_alert(context, text: str) -> None:
    """Post ``text`` (a Jinja template over the task context) to on-call.

    A new notifier per call, because a notifier caches its hook and so its connection:
    one shared instance would keep posting to wherever the first alert went. (The import
    is here, not at the top, so DAG files parse fast.)
    """
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    SlackWebhookNotifier(slack_webhook_conn_id=ALERT_CONN_ID, text=text)(context)

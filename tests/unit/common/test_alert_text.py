"""The failure alert renders for every kind of run, or on-call never hears of it."""

from __future__ import annotations

import jinja2

from flowgate.common.alerts import FAILURE_TEXT


class _Named:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _render(**context) -> str:
    # Airflow renders notifier templates with StrictUndefined: a missing name raises.
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(FAILURE_TEXT).render(**context)


def test_the_alert_renders_for_a_manual_run_without_a_logical_date():
    text = _render(dag=_Named(dag_id="partner_weekly_ingest__acme"), ti=_Named(task_id="receive", try_number=1,
                   log_url="http://ui/log"), run_id="manual__2026-12-02", exception=RuntimeError("quarantined"))
    assert "receive" in text and "quarantined" in text and "manual run" in text


def test_the_alert_names_the_date_of_a_dated_run():
    text = _render(dag=_Named(dag_id="finance_daily_reporting"), ti=_Named(task_id="stage", try_number=3,
                   log_url="http://ui/log"), run_id="scheduled__2026-10-01", ds="2026-10-01",
                   exception=RuntimeError("timeout"))
    assert "date 2026-10-01" in text

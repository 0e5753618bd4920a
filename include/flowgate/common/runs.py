"""What a batch task needs to know about its run, read from the Airflow task context."""

from __future__ import annotations

from datetime import date


def business_date(context) -> date:
    """The run's data interval start, unless a manual run names the date (``business_date`` param).

    Never "now": a retry, a re-run or a backfill of a date works on the same data.
    """
    named = context["params"].get("business_date")
    if named:
        return date.fromisoformat(named)
    if context.get("data_interval_start") is None:
        raise ValueError("a run without a data interval must set the business_date param")
    return context["data_interval_start"].date()


def run_type(dag_run) -> str:
    """scheduled, manual, backfill or asset_triggered (what the audit log records)."""
    return getattr(dag_run.run_type, "value", str(dag_run.run_type))

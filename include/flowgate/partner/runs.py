"""What a partner task needs from its Airflow run: the week, the reprocess request, the alert."""

from __future__ import annotations

from flowgate.partner.contract import IsoWeek

FILE_LATE_TEXT = (
    ":hourglass: FlowGate partner file late: partner `{partner}` has not delivered `{file}` for week {week} "
    "by the contract's deadline ({hours} h after the week). DAG `{{{{ dag.dag_id }}}}`, run `{{{{ run_id }}}}`. "
    "Runbook: docs/runbooks/partner_weekly_ingest.md#a-file-is-late. Log: {{{{ ti.log_url }}}}"
)


def week_of(params: dict, data_interval_start) -> IsoWeek:
    """The ``week`` param of a manual run, else the ISO week its data interval starts in.

    Never "now": a retry, a re-run or a backfill of a week reads the same file.
    """
    if params.get("week"):
        return IsoWeek.parse(params["week"])
    if data_interval_start is None:
        raise ValueError("a run without a data interval must set the week param (e.g. 2026-W47)")
    return IsoWeek.of(data_interval_start)


def reprocess_request(params: dict, dag_run) -> tuple[str | None, str | None]:
    """(who, why) when an operator asked to process a known file again, else (None, None)."""
    if not params.get("reprocess"):
        return None, None
    reason = (params.get("reprocess_reason") or "").strip()
    if not reason:
        raise ValueError("reprocess needs a reprocess_reason: the ledger records why a file was processed again")
    who = getattr(dag_run, "triggering_user_name", None) or "unknown"
    return who, reason


def alert_file_late_or_failed(context, partner: str) -> None:
    """The sensor's ``on_failure_callback`` (bound to its partner): a missed deadline is a
    "file late" alert naming the partner, the file and the week; any other failure (SFTP
    down after its retries) the usual one."""
    from airflow.sdk.exceptions import AirflowSensorTimeout

    from flowgate.common.alerts import alert_on_failure, send_alert
    from flowgate.partner.contract import load_contract

    if not isinstance(context.get("exception"), AirflowSensorTimeout):
        alert_on_failure(context)
        return
    contract = load_contract(partner)
    week = week_of(context["params"], context.get("data_interval_start"))
    send_alert(context, FILE_LATE_TEXT.format(partner=partner, file=contract.file_name(week), week=week,
                                              hours=contract.delivery.deadline_hours))

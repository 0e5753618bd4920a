"""
### Application logs — rehydrate a window from the lake

For a debug session: every line (all severities) of one **service** between **start** and
**end** (event time, ISO 8601, UTC if no offset; at most 2 days) is read back from the raw
lake and indexed into `app-logs-rehydrated-<service>-<start>-<end>` in OpenSearch, where
it is searched like the daily indices. Re-running the same window re-indexes the same
documents (no copies). The index expires after the OpenSearch TTL
(`include/flowgate/logs/ttl.yaml`), counted from its creation.

Trigger from the UI with the form below. Runbook: `docs/runbooks/app_logs_stream.md#rehydrate`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS


@dag(
    dag_id="app_logs_rehydrate",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "service": Param("payments-api", type="string", minLength=1, description="resource service.name"),
        "start": Param("2026-01-01T00:00:00+00:00", type="string", format="date-time",
                       description="window start (event time)"),
        "end": Param("2026-01-01T01:00:00+00:00", type="string", format="date-time",
                     description="window end (event time, excluded)"),
    },
    tags=["logs", "batch"],
    doc_md=__doc__,
)
def app_logs_rehydrate():
    @task
    def rehydrate_window(params=None):
        from dataclasses import asdict

        from flowgate.common.connections import s3_client
        from flowgate.logs.rehydrate import rehydrate
        from flowgate.logs.search import SearchClient

        result = rehydrate(s3_client(), SearchClient.from_connection(), params["service"], params["start"],
                           params["end"])
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(result).items()}

    rehydrate_window()


app_logs_rehydrate()

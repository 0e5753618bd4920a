"""
### Application-log stream — supervisor

Keeps the Spark Structured Streaming job `spark_jobs/app_logs.py` running: `app.logs`
(fed by the services' log forwarder) → every line raw in the S3 lake
(`s3://flowgate-lake/raw/app_logs/dt=…/hour=…/`), WARN and above in OpenSearch's daily
`app-logs-*` indices, and the rules of `alert_rules/app_logs.yaml` evaluated on event time,
their alerts posted to Alertmanager (grouped, deduplicated, then on-call's Slack).

Every 5 minutes a run:
1. **ensure_running** — submits the job detached unless it is already running (never a
   second copy); a stream stopped on purpose stays stopped until `action=start`.
2. **watch** — a reschedule-mode sensor reads the job's heartbeat: driver alive, progress
   ≤ 90 s ago, consumer lag ≤ 1M lines. Unhealthy → the task fails and on-call is alerted.
3. **resubmit** — only after a failed watch: the job resumes from its checkpoint; the
   replayed batch rewrites the same lake objects and is evaluated from the saved rule state.

Stop: trigger with `{"action": "stop"}`; start again: `{"action": "start"}`.
Runbook: `docs/runbooks/app_logs_stream.md`.
"""

from __future__ import annotations

# The Airflow DAG comes from the shared supervisor shape (this comment also lets Airflow's
# safe-mode discovery, which looks for the words "airflow" and "dag", find the file).
from flowgate.common.stream_dag import supervised_stream_dag
from flowgate.logs.stream_spec import BUDGET, app_logs_stream_spec

supervised_stream_dag(dag_id="app_logs_stream", spec=app_logs_stream_spec, budget=BUDGET,
                      tags=["logs", "streaming"], doc_md=__doc__)

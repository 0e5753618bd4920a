"""
### Fraud detection stream — supervisor

Keeps the Spark Structured Streaming job `spark_jobs/fraud_detection.py` running:
payments.events → tokenization (PAN never at rest) → features + model → a decision per
transaction, exactly once, in `fraud.decisions` and on `payments.decisions`.

Every 5 minutes a run:
1. **ensure_running** — submits the job detached (spark-submit, its own process group)
   unless it is already running; never a second copy. A stream stopped on purpose stays
   stopped until a run with `action=start`.
2. **watch** — a reschedule-mode sensor checks the heartbeat the job's
   `StreamingQueryListener` writes: driver alive, last progress ≤ 90 s ago, consumer lag
   within budget. Unhealthy → the task fails and on-call is alerted with the reason.
3. **resubmit** — only after a failed watch: stops what is left of the driver and
   submits again; the job resumes from its checkpoint, and the idempotent store turns
   the replayed batch into a no-op.

Stop the stream: trigger with `{"action": "stop"}`. Start it again: `{"action": "start"}`.
Runbook: `docs/runbooks/fraud_stream.md`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS
from flowgate.common.stream_sensor import StreamHealthSensor
from flowgate.fraud.stream import BUDGET, fraud_stream_spec

WATCH_WINDOW = timedelta(minutes=5)


@dag(
    dag_id="fraud_stream",
    schedule=WATCH_WINDOW,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"action": Param("supervise", enum=["supervise", "start", "stop"],
                            description="supervise: keep it running; start: clear a stop; stop: stop it")},
    tags=["fraud", "streaming", "pci"],
    doc_md=__doc__,
)
def fraud_stream():
    @task.branch
    def route(params=None):
        return "stop_stream" if params["action"] == "stop" else "ensure_running"

    @task
    def ensure_running(params=None):
        from airflow.sdk.exceptions import AirflowSkipException

        from flowgate.common import stream_supervisor as supervisor

        spec = fraud_stream_spec()
        if params["action"] == "start":
            supervisor.allow_start(spec)
        if supervisor.stopped_on_purpose(spec):
            raise AirflowSkipException(f"{spec.name} was stopped on purpose; trigger with action=start to resume")
        return supervisor.submit(spec)

    @task
    def stop_stream():
        from flowgate.common import stream_supervisor as supervisor

        return supervisor.stop(fraud_stream_spec(), on_purpose=True)

    watch = StreamHealthSensor(task_id="watch", spec=fraud_stream_spec, watch_for=WATCH_WINDOW, budget=BUDGET)

    @task(trigger_rule="one_failed")
    def resubmit():
        from airflow.sdk.exceptions import AirflowSkipException

        from flowgate.common import stream_supervisor as supervisor

        spec = fraud_stream_spec()
        if supervisor.stopped_on_purpose(spec):
            raise AirflowSkipException(f"{spec.name} was stopped on purpose meanwhile")
        supervisor.stop(spec, on_purpose=False)
        return supervisor.submit(spec)

    branch = route()
    branch >> [ensure_running() >> watch >> resubmit(), stop_stream()]


fraud_stream()

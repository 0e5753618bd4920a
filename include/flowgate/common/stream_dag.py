"""The supervisor DAG every long-running stream gets: one shape, one place.

A run routes on its ``action`` param: **supervise** (the schedule's runs) and **start**
submit the driver detached unless it is running (start also clears a stop on purpose),
then a reschedule-mode sensor watches the heartbeat for the run's window; only after a
failed watch, **resubmit** stops what is left of the driver and submits it again from its
checkpoint. **stop** stops it on purpose, and it stays stopped until a run with
``action=start``. The stream's own file supplies the spec, the health budget and the docs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from flowgate.common.dag_defaults import DEFAULT_ARGS
from flowgate.common.stream_supervisor import HealthBudget, StreamSpec


def supervised_stream_dag(*, dag_id: str, spec: Callable[[], StreamSpec], budget: HealthBudget,
                          tags: Sequence[str], doc_md: str, watch_window: timedelta = timedelta(minutes=5)):
    """Build (and register, by being called at a DAG file's top level) the stream's DAG."""
    from airflow.sdk import Param, dag, task

    from flowgate.common.stream_sensor import StreamHealthSensor

    @dag(
        dag_id=dag_id,
        schedule=watch_window,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params={"action": Param("supervise", enum=["supervise", "start", "stop"],
                                description="supervise: keep it running; start: clear a stop; stop: stop it")},
        tags=list(tags),
        doc_md=doc_md,
    )
    def supervisor_dag():
        @task.branch
        def route(params=None):
            return "stop_stream" if params["action"] == "stop" else "ensure_running"

        @task
        def ensure_running(params=None):
            from airflow.sdk.exceptions import AirflowSkipException

            from flowgate.common import stream_supervisor as supervisor

            stream = spec()
            if params["action"] == "start":
                supervisor.allow_start(stream)
            if supervisor.stopped_on_purpose(stream):
                raise AirflowSkipException(f"{stream.name} was stopped on purpose; trigger with action=start to resume")
            return supervisor.submit(stream)

        @task
        def stop_stream():
            from flowgate.common import stream_supervisor as supervisor

            return supervisor.stop(spec(), on_purpose=True)

        watch = StreamHealthSensor(task_id="watch", spec=spec, watch_for=watch_window, budget=budget)

        @task(trigger_rule="one_failed")
        def resubmit():
            from airflow.sdk.exceptions import AirflowSkipException

            from flowgate.common import stream_supervisor as supervisor

            stream = spec()
            if supervisor.stopped_on_purpose(stream):
                raise AirflowSkipException(f"{stream.name} was stopped on purpose meanwhile")
            supervisor.stop(stream, on_purpose=False)
            return supervisor.submit(stream)

        branch = route()
        branch >> [ensure_running() >> watch >> resubmit(), stop_stream()]

    return supervisor_dag()

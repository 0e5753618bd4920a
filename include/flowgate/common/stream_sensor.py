"""The Airflow side of stream supervision: a sensor that watches a stream's health.

It pokes in reschedule mode — between pokes it holds no worker slot — for a watch
window, and succeeds when the window ends healthy; the next scheduled run takes over.
On the first unhealthy poke it fails for good (AirflowFailException skips retries): the failure alert tells on-call what
is wrong, and the DAG's resubmit task (``trigger_rule="one_failed"``) restarts the
stream from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk import BaseSensorOperator

from flowgate.common import stream_supervisor as supervisor


class StreamHealthSensor(BaseSensorOperator):
    def __init__(self, *, spec: Callable[[], supervisor.StreamSpec], watch_for: timedelta,
                 budget: supervisor.HealthBudget = supervisor.HealthBudget(), **kwargs):
        kwargs.setdefault("poke_interval", 30)
        super().__init__(mode="reschedule", timeout=(watch_for + timedelta(minutes=5)).total_seconds(), **kwargs)
        self.spec, self.watch_for, self.budget = spec, watch_for, budget

    def poke(self, context) -> bool:
        spec = self.spec()
        if supervisor.stopped_on_purpose(spec):
            self.log.info("stream %s was stopped on purpose: nothing to watch", spec.name)
            return True
        health = supervisor.assess(spec, self.budget)
        self.log.info("stream %s: %s", spec.name, health.summary())
        if not health.healthy:
            raise AirflowFailException(f"stream {spec.name} unhealthy: {health.summary()}")
        watching_since = context["dag_run"].start_date or datetime.now(UTC)
        return datetime.now(UTC) - watching_since >= self.watch_for

"""What every gate shares: a failed gate is final for its run.

Retries are for transient faults (a dropped connection). A gate that found bad data will
find it again, so retrying only delays the alert: its failure skips the retries.
"""

from __future__ import annotations

from contextlib import contextmanager


class GateRejected(RuntimeError):
    """A gate looked at the data and said no. Subclasses name the gate."""


@contextmanager
def gate_failures_are_final():
    """Inside an Airflow task: turn a gate's rejection into a failure without retries."""
    try:
        yield
    except GateRejected as rejected:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(rejected)) from rejected

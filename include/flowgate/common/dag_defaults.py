"""Task defaults every FlowGate DAG starts from: one place, with the reason for each choice."""

from __future__ import annotations

from datetime import timedelta

from flowgate.common.alerts import alert_on_failure

OWNER = "data-platform"

# Tags a DAG may carry; the DAG policy test rejects any other, so the UI filters stay useful.
ALLOWED_TAGS = frozenset({
    "platform", "smoke", "finance", "sox", "fraud", "pci", "streaming", "batch",
    "c360", "dbt", "logs", "partner", "nda", "ml",
})

DEFAULT_ARGS = {
    "owner": OWNER,
    # Transient faults (a DB failover, a broker restart) heal within minutes; a third
    # failure in a row is worth waking somebody for.
    "retries": 2,
    "retry_delay": timedelta(seconds=20),
    # Doubling the wait gives a struggling source room to recover instead of hammering it.
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    # A hung task holds a slot and hides the failure: every task gets a deadline; DAGs
    # with longer work override it per task.
    "execution_timeout": timedelta(minutes=30),
    # Called once a task has failed for good (after its retries): on-call hears of it.
    "on_failure_callback": alert_on_failure,
}

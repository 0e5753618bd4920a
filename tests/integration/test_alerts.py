"""The shared failure alert is delivered for real, to a webhook receiver the test runs."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_a_failed_task_alerts_on_call_with_dag_date_and_reason(running_stack, webhook_receiver):
    _, received = webhook_receiver
    from airflow.dag_processing.dagbag import DagBag

    fixture = running_stack.root / "tests" / "fixtures" / "dags" / "always_fails.py"
    dag = DagBag(dag_folder=str(fixture)).get_dag("always_fails")
    run = dag.test()
    assert run.state == "failed"

    alerts = [json.loads(line) for line in received.read_text().splitlines()]
    assert len(alerts) == 1
    text = alerts[0]["payload"]["text"]
    assert "always_fails" in text and "reconcile" in text
    assert run.logical_date.strftime("%Y-%m-%d") in text or str(run.run_id) in text
    assert "control totals differ by 0.01 EUR on GL 4000" in text

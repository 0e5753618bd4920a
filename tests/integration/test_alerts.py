"""The shared failure alert is delivered for real, to a webhook receiver the test runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from flowgate.devstack.process import http_ok

pytestmark = pytest.mark.integration


@pytest.fixture
def webhook_receiver(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "flowgate.devstack.alert_sink",
                             "--port", str(port), "--out", str(out)])
    try:
        deadline = time.monotonic() + 30
        while not http_ok(f"http://127.0.0.1:{port}/health"):
            assert time.monotonic() < deadline, "webhook receiver did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/hooks/oncall", out
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_failed_task_alerts_on_call_with_dag_date_and_reason(running_stack, webhook_receiver, monkeypatch):
    url, received = webhook_receiver
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", json.dumps({"conn_type": "slackwebhook", "password": url}))
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

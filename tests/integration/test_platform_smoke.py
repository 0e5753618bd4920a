"""The platform_smoke DAG against the real stack: in-process, then through the scheduler."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

SMOKE_TASKS = {"postgres", "kafka_produce", "kafka_consume", "s3", "sftp", "spark_reads_kafka"}


def test_smoke_dag_succeeds_with_dag_test(running_stack, scheduler_paused):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(running_stack.root / "dags" / "platform_smoke.py")).get_dag("platform_smoke")
    with scheduler_paused("platform_smoke"):
        run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {task: "success" for task in SMOKE_TASKS}, states


def test_smoke_dag_triggered_through_rest_api_runs_on_the_scheduler(airflow_api):
    run, tasks = airflow_api.run_dag("platform_smoke", timeout=600)
    assert run["state"] == "success", tasks
    assert run["run_type"] == "manual"
    assert tasks == {task: "success" for task in SMOKE_TASKS}


def test_ui_and_api_are_behind_a_login(running_stack):
    base = f"http://127.0.0.1:{running_stack.ports.airflow}"
    login_page = httpx.get(f"{base}/auth/login", timeout=10)
    assert login_page.status_code == 200 and "<html" in login_page.text.lower()
    assert httpx.get(f"{base}/api/v2/dags", timeout=10).status_code == 401
    wrong = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10)
    assert wrong.status_code == 401, "the default admin/admin must not log in"

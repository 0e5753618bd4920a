"""fraud_model_training in Airflow: a good model is published and promoted; a model
below the gate is not, and on-call hears why."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

DAG_ID = "fraud_model_training"


@pytest.fixture
def training_dag(running_stack, scheduler_paused, tmp_path, monkeypatch):
    """The DAG, with a model registry of this test's own (FLOWGATE_HOME moves it)."""
    from airflow.dag_processing.dagbag import DagBag

    from flowgate.fraud import model

    registry = tmp_path / "models"
    monkeypatch.setattr(model, "models_dir", lambda cfg=None: registry)
    with scheduler_paused(DAG_ID):
        yield DagBag(dag_folder=str(running_stack.root / "dags" / f"{DAG_ID}.py")).get_dag(DAG_ID), registry


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_a_model_that_passes_the_gate_is_published_and_loads(training_dag):
    from flowgate.fraud.model import load_current_model

    dag, registry = training_dag
    run = dag.test(run_conf={"transactions": 40_000, "min_auc": 0.9, "min_recall": 0.5})
    assert _states(run) == {"train": "success", "evaluate_gate": "success", "publish": "success"}
    current = json.loads((registry / "current.json").read_text())
    assert load_current_model(registry).version in current["model"]


def test_a_model_below_the_gate_is_not_promoted_and_alerts(training_dag, webhook_receiver):
    dag, registry = training_dag
    _, alerts = webhook_receiver
    run = dag.test(run_conf={"transactions": 20_000, "min_auc": 0.9999, "min_recall": 0.5})
    states = _states(run)
    assert states["evaluate_gate"] == "failed" and states["publish"] in ("upstream_failed", None)
    assert not (registry / "current.json").exists()
    texts = [json.loads(line)["payload"]["text"] for line in alerts.read_text().splitlines()]
    assert len(texts) == 1 and DAG_ID in texts[0] and "evaluate_gate" in texts[0] and "AUC" in texts[0]

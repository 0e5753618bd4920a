"""
### Fraud model training (on demand)

1. **train** — simulated, labelled payments from the gateway simulator (`seed`,
   `transactions`, `fraud_rate`); logistic regression on the earlier 80 %, measured on
   the later 20 %; the model (JSON, with its sha256) lands in the registry's
   `candidates/`.
2. **evaluate_gate** — the hold-out AUC and recall, read from the model file, must reach
   `min_auc` and `min_recall`. A rejected model fails the run without retries and
   alerts on-call; the current model stays in place.
3. **publish** — the candidate is saved in the registry and `current.json` points at
   it (atomic replace). A running stream picks the model up on its next restart.

Registry: `$FLOWGATE_HOME/models/fraud/`. The same from a shell: `flowgate fraud train`.
Code: `include/flowgate/fraud/` (`training.py`, `model.py`, `features.py`, `gateway.py`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from flowgate.common.dag_defaults import DEFAULT_ARGS
from flowgate.common.gates import gate_failures_are_final


def _registry() -> str:
    from flowgate.fraud.model import models_dir

    return str(models_dir())


@dag(
    dag_id="fraud_model_training",
    schedule=None,  # on demand: after a feature or simulator change, or from the UI
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # two trainings would race to promote
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(minutes=20)},
    tags=["fraud", "ml", "batch"],
    params={
        "transactions": Param(200_000, type="integer", minimum=1_000, maximum=5_000_000,
                              description="Simulated payments to learn from."),
        "fraud_rate": Param(0.02, type="number", minimum=0.001, maximum=0.4, description="Share of planted fraud."),
        "seed": Param(7, type="integer", description="Simulator seed."),
        "min_auc": Param(0.95, type="number", minimum=0, maximum=1, description="Lowest acceptable hold-out AUC."),
        "min_recall": Param(0.75, type="number", minimum=0, maximum=1,
                            description="Lowest acceptable hold-out recall (flagged = review or decline)."),
    },
    doc_md=__doc__,
)
def fraud_model_training():
    @task
    def train(params: dict | None = None) -> dict:
        from flowgate.fraud.training import train_candidate

        return train_candidate(_registry(), int(params["transactions"]), float(params["fraud_rate"]),
                               int(params["seed"]))

    @task
    def evaluate_gate(candidate: dict, params: dict | None = None) -> dict:
        from flowgate.fraud.training import check_gate

        with gate_failures_are_final():
            return check_gate(candidate, float(params["min_auc"]), float(params["min_recall"]))

    @task
    def publish(gated: dict) -> dict:
        from flowgate.fraud.training import publish

        return publish(gated, _registry())

    publish(evaluate_gate(train()))


fraud_model_training()

"""The training flow's steps, as the DAG runs them: train a candidate, gate it, publish it.

Only a model that passed the gate reaches the registry (and ``current.json``): a
candidate is written to ``<registry>/candidates/`` first. Each step hands the next one
a small dict (a path, a version, the metrics), which is all that goes through XCom.
"""

from __future__ import annotations

from pathlib import Path

from flowgate.common.gates import GateRejected
from flowgate.fraud.model import load_model, promote, save_model, train_model

CANDIDATES = "candidates"


class ModelGateRejected(GateRejected):
    """The candidate model is not good enough to decide payments."""


def train_candidate(registry: Path | str, transactions: int, fraud_rate: float, seed: int) -> dict:
    """Train, write the candidate file; return its path, version and hold-out metrics."""
    model, metrics = train_model(transactions, fraud_rate, seed)
    path = save_model(model, Path(registry) / CANDIDATES)
    return {"path": str(path), "version": model.version, "metrics": metrics}


def check_gate(candidate: dict, min_auc: float, min_recall: float) -> dict:
    """Refuse a candidate whose hold-out AUC or recall is below the minimum.

    The figures are read from the model file itself (sha-checked), not from the
    message that named it."""
    model = load_model(candidate["path"])
    auc, recall = model.metrics.get("auc"), model.metrics.get("recall")
    failures = []
    if auc is None or auc < min_auc:
        failures.append(f"hold-out AUC {auc} < {min_auc}")
    if recall is None or recall < min_recall:
        failures.append(f"hold-out recall {recall} < {min_recall}")
    if failures:
        raise ModelGateRejected(f"fraud model {model.version} rejected: {'; '.join(failures)}")
    return {"path": candidate["path"], "version": model.version, "auc": auc, "recall": recall,
            "precision": model.metrics.get("precision")}


def publish(candidate: dict, registry: Path | str) -> dict:
    """Copy the gated candidate into the registry and make it the current model."""
    model = load_model(candidate["path"])
    path = save_model(model, registry)
    pointer = promote(path, registry)
    return {"path": str(path), "version": model.version, "current": str(pointer)}

"""The fraud model: logistic regression, a safe JSON file, pure-numpy scoring with reasons.

Why logistic regression: a micro-batch must be scored in well under a millisecond or
two, every decision must say why (reason codes are each feature's share of the logit),
and the file must be safe to load: a model is a few dozen numbers in JSON, never a
pickle, so loading a file can never run code. The file carries its own sha256; a file
that was edited, truncated or built for other features is refused.

Registry: ``<FLOWGATE_HOME>/models/fraud/fraud-<yyyymmddThhmmss>-<sha8>.json`` (never
overwritten) and ``current.json``, the pointer the stream loads, replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from flowgate.fraud.features import FEATURE_NAMES, build_features

FORMAT = "flowgate.fraud.logistic-regression"
FORMAT_VERSION = 1
CURRENT = "current.json"
MAX_MODEL_BYTES = 1_000_000  # a model is a few KB; anything huge is not one
DECISIONS = ("approve", "review", "decline")
REASON_CODES = 3  # the top contributing features named on a review or a decline

# Thresholds are chosen on the training data: review catches most fraud while at least
# this share of reviews are fraud; decline only where nearly every decision is fraud.
REVIEW_MIN_PRECISION = 0.5
DECLINE_MIN_PRECISION = 0.95
HOLDOUT_SHARE = 0.2
TRAINING_RATE_PER_S = 50.0  # 200k payments span ~67 minutes: the 1 h windows fill up
TRAINING_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class ModelFileError(ValueError):
    """A model file that must not be used (tampered, malformed, other features)."""


class NoModelError(FileNotFoundError):
    """No promoted model yet."""


@dataclass(frozen=True, eq=False)
class FraudModel:
    feature_names: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    coefficients: np.ndarray
    intercept: float
    threshold_review: float
    threshold_decline: float
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    created_at: str = ""  # yyyymmddThhmmss, UTC

    # --- identity -------------------------------------------------------------
    def payload(self) -> dict:
        """Everything the file holds except its own hash and the version derived from it."""
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "created_at": self.created_at,
            "feature_names": list(self.feature_names),
            "means": [float(v) for v in self.means], "scales": [float(v) for v in self.scales],
            "coefficients": [float(v) for v in self.coefficients], "intercept": float(self.intercept),
            "thresholds": {"review": float(self.threshold_review), "decline": float(self.threshold_decline)},
            "metrics": self.metrics, "training": self.training,
        }

    # Cached: the stream stamps every decision with the version, and hashing the
    # canonical JSON per row was a fifth of a micro-batch's Python time. Frozen: it can't go stale.
    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(_canonical(self.payload())).hexdigest()

    @cached_property
    def version(self) -> str:
        return f"{self.created_at}-{self.sha256[:8]}"

    def to_json(self) -> bytes:
        return json.dumps({"version": self.version, "sha256": self.sha256, **self.payload()},
                          indent=1, sort_keys=True, allow_nan=False).encode() + b"\n"

    # --- scoring --------------------------------------------------------------
    def logits(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(logit per row, contribution per row and feature): standardised x times coefficient."""
        x = features.loc[:, list(self.feature_names)].to_numpy(dtype=np.float64)
        contributions = (x - self.means) / self.scales * self.coefficients
        return contributions.sum(axis=1) + self.intercept, contributions

    def score_and_explain(self, features: pd.DataFrame) -> pd.DataFrame:
        """score (0..1), decision (thresholds from the file) and reason codes, index aligned."""
        logit, contributions = self.logits(features)
        score = 0.5 * (1.0 + np.tanh(0.5 * logit))  # the logistic function, overflow-free
        decision = np.where(score >= self.threshold_decline, "decline",
                            np.where(score >= self.threshold_review, "review", "approve"))
        names = np.asarray(self.feature_names, dtype=object)
        top = np.argsort(-contributions, axis=1, kind="stable")[:, :REASON_CODES]
        reasons = [[] for _ in range(len(score))]
        for i in np.flatnonzero(decision != "approve"):
            reasons[i] = [names[j] for j in top[i] if contributions[i, j] > 0]
        return pd.DataFrame({"score": score, "decision": decision, "reason_codes": reasons}, index=features.index)


# --- the file: write, read, validate ----------------------------------------------

def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _reject_constant(name: str):
    raise ModelFileError(f"model file holds {name}: not a valid model")


def from_json(data: bytes) -> FraudModel:
    """A model from its file's bytes; every field checked, the hash verified. Never unpickles."""
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"model file is {len(data)} bytes: too large to be a model")
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"model file is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ModelFileError("model file is not a JSON object")
    expected = {"version", "sha256", "format", "format_version", "created_at", "feature_names", "means",
                "scales", "coefficients", "intercept", "thresholds", "metrics", "training"}
    if set(doc) != expected:
        raise ModelFileError(f"model file keys differ: missing {sorted(expected - set(doc))}, "
                             f"unexpected {sorted(set(doc) - expected)}")
    if doc["format"] != FORMAT or doc["format_version"] != FORMAT_VERSION:
        raise ModelFileError(f"not a {FORMAT} v{FORMAT_VERSION} file: {doc['format']!r} v{doc['format_version']!r}")
    names = doc["feature_names"]
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ModelFileError("feature_names must be a list of strings")
    if tuple(names) != FEATURE_NAMES:
        raise ModelFileError(f"model features {names} do not match this code's FEATURE_NAMES {list(FEATURE_NAMES)}: "
                             "retrain with `flowgate fraud train`")
    vectors = {k: _vector(doc[k], k, len(names)) for k in ("means", "scales", "coefficients")}
    if not np.all(vectors["scales"] > 0):
        raise ModelFileError("scales must be > 0")
    intercept = _number(doc["intercept"], "intercept")
    thresholds = doc["thresholds"]
    if not (isinstance(thresholds, dict) and set(thresholds) == {"review", "decline"}):
        raise ModelFileError("thresholds must be {review, decline}")
    review, decline = _number(thresholds["review"], "review"), _number(thresholds["decline"], "decline")
    if not 0.0 < review <= decline < 1.0:
        raise ModelFileError(f"thresholds must satisfy 0 < review <= decline < 1 (got {review}, {decline})")
    if not (isinstance(doc["metrics"], dict) and isinstance(doc["training"], dict)):
        raise ModelFileError("metrics and training must be objects")
    if not (isinstance(doc["created_at"], str) and _is_stamp(doc["created_at"])):
        raise ModelFileError("created_at must be yyyymmddThhmmss")
    model = FraudModel(tuple(names), vectors["means"], vectors["scales"], vectors["coefficients"], intercept,
                       review, decline, doc["metrics"], doc["training"], doc["created_at"])
    if doc["sha256"] != model.sha256:
        raise ModelFileError("model file sha256 does not match its content: the file was altered")
    if doc["version"] != model.version:
        raise ModelFileError(f"model version {doc['version']!r} does not match its content ({model.version})")
    return model


def _vector(value, name: str, length: int) -> np.ndarray:
    if not (isinstance(value, list) and len(value) == length):
        raise ModelFileError(f"{name} must be a list of {length} numbers")
    return np.array([_number(v, name) for v in value], dtype=np.float64)


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelFileError(f"{name} must hold finite numbers")
    return float(value)


def _is_stamp(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%dT%H%M%S")
    except ValueError:
        return False
    return True


def load_model(path: Path | str) -> FraudModel:
    path = Path(path)
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError(f"{path} is too large to be a model")
    try:
        return from_json(path.read_bytes())
    except ModelFileError as err:
        raise ModelFileError(f"{path}: {err}") from None


# --- the registry ------------------------------------------------------------------

def models_dir(cfg=None) -> Path:
    """``<FLOWGATE_HOME or .flowgate>/models/fraud``."""
    if cfg is None:
        from flowgate.devstack.config import StackConfig

        cfg = StackConfig.from_env()
    return cfg.state_dir / "models" / "fraud"


def save_model(model: FraudModel, directory: Path | str) -> Path:
    """Write ``fraud-<version>.json``; an existing file is never replaced (the same model
    saved twice is the same file: its name holds the content hash)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"fraud-{model.version}.json"
    data = model.to_json()
    if path.exists():
        if path.read_bytes() == data:
            return path
        raise FileExistsError(f"{path} exists with other content: model files are never overwritten")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fraud-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if the name was taken meanwhile: no overwrite, no torn file
    finally:
        os.unlink(tmp)
    return path


def promote(path: Path | str, directory: Path | str) -> Path:
    """Point ``current.json`` at the model file ``path`` (in ``directory``), atomically.
    The file is loaded and validated first: a broken model is never promoted."""
    directory, path = Path(directory).resolve(), Path(path).resolve()
    if path.parent != directory:
        raise ValueError(f"{path} is not in the registry {directory}: save_model it there first")
    model = load_model(path)
    pointer = {"model": path.name, "version": model.version, "sha256": model.sha256,
               "promoted_at": datetime.now(UTC).isoformat(timespec="seconds")}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".current-", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(pointer, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, directory / CURRENT)
    return directory / CURRENT


def current_model_path(directory: Path | str) -> Path:
    directory = Path(directory)
    pointer_path = directory / CURRENT
    if not pointer_path.exists():
        raise NoModelError(f"no promoted fraud model in {directory}: run `flowgate fraud train` first")
    try:
        pointer = json.loads(pointer_path.read_text())
        name = pointer["model"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ModelFileError(f"{pointer_path} is not a model pointer ({err}): run `flowgate fraud train`") from None
    if not isinstance(name, str) or Path(name).name != name:
        raise ModelFileError(f"{pointer_path} points outside the registry: {name!r}")
    return directory / name


def load_current_model(directory: Path | str | None = None) -> FraudModel:
    """The promoted model; a clear error if there is none yet."""
    directory = Path(directory) if directory is not None else models_dir()
    path = current_model_path(directory)
    if not path.exists():
        raise NoModelError(f"{directory / CURRENT} points at {path.name}, which is missing: "
                           "run `flowgate fraud train`")
    pointer = json.loads((directory / CURRENT).read_text())
    model = load_model(path)
    if pointer.get("sha256") not in (None, model.sha256):
        raise ModelFileError(f"{path} is not the model {CURRENT} promoted (sha256 differs)")
    return model


# --- training ----------------------------------------------------------------------

def labelled_frame(transactions: int, fraud_rate: float, seed: int) -> pd.DataFrame:
    """Simulated payments, chronological, with their features, ``label`` and ``pattern``."""
    from flowgate.fraud.gateway import simulate, transactions_frame

    frame = transactions_frame(simulate(transactions, fraud_rate, seed, TRAINING_START, TRAINING_RATE_PER_S))
    features = build_features(frame, frame.iloc[:0])
    return pd.concat([frame[["transaction_id", "event_time", "label", "pattern"]], features], axis=1)


def fit(features: pd.DataFrame, labels: np.ndarray) -> FraudModel:
    """Standardise, fit, and pick the thresholds on the training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = features.loc[:, list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    scaler = StandardScaler().fit(x)
    scales = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)  # a constant feature stays harmless
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit((x - scaler.mean_) / scales, labels)
    model = FraudModel(FEATURE_NAMES, scaler.mean_.copy(), scales, classifier.coef_[0].copy(),
                       float(classifier.intercept_[0]), 0.5, 0.5)
    logit, _ = model.logits(features)
    review, decline = choose_thresholds(0.5 * (1.0 + np.tanh(0.5 * logit)), labels)
    return FraudModel(model.feature_names, model.means, model.scales, model.coefficients, model.intercept,
                      review, decline)


def choose_thresholds(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(review, decline): the lowest score where precision reaches REVIEW_MIN_PRECISION
    (most fraud caught at that precision), and where it reaches DECLINE_MIN_PRECISION."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)

    def lowest(min_precision: float, fallback: float) -> float:
        ok = np.flatnonzero(precision >= min_precision)
        return float(np.clip(s[ok[-1]], 1e-6, 1 - 1e-6)) if len(ok) else fallback

    review = lowest(REVIEW_MIN_PRECISION, 0.5)
    return review, max(review, lowest(DECLINE_MIN_PRECISION, max(review, 0.9)))


def evaluate(model: FraudModel, features: pd.DataFrame, labels: np.ndarray, patterns: np.ndarray) -> dict:
    """Hold-out figures: flagged = review or decline."""
    from sklearn.metrics import roc_auc_score

    scored = model.score_and_explain(features)
    flagged = scored["decision"].to_numpy() != "approve"
    declined = scored["decision"].to_numpy() == "decline"
    fraud = labels.astype(bool)
    per_pattern = {p: round(float(flagged[patterns == p].mean()), 4) for p in sorted(set(patterns)) if (patterns == p).any()}
    return {
        "precision": _ratio(np.sum(flagged & fraud), np.sum(flagged)),
        "recall": _ratio(np.sum(flagged & fraud), np.sum(fraud)),
        "auc": round(float(roc_auc_score(fraud, scored["score"])), 4) if 0 < fraud.sum() < len(fraud) else None,
        "decline_precision": _ratio(np.sum(declined & fraud), np.sum(declined)),
        "decline_recall": _ratio(np.sum(declined & fraud), np.sum(fraud)),
        "flag_rate_by_pattern": per_pattern,
    }


def _ratio(numerator, denominator) -> float:
    return round(float(numerator) / float(denominator), 4) if denominator else 0.0


def train_model(transactions: int = 200_000, fraud_rate: float = 0.02, seed: int = 7) -> tuple[FraudModel, dict]:
    """Simulate labelled payments, fit on the earlier 80 %, measure on the later 20 %."""
    from flowgate.common.version import code_version

    started = time.perf_counter()
    data = labelled_frame(transactions, fraud_rate, seed)
    cut = int(len(data) * (1 - HOLDOUT_SHARE))  # by time: the frame is chronological
    train, holdout = data.iloc[:cut], data.iloc[cut:]
    if train["label"].nunique() < 2 or holdout["label"].nunique() < 2:
        raise ValueError("too few payments or fraud to train and evaluate: raise transactions or fraud_rate")
    fitted = fit(train, train["label"].to_numpy())
    held = evaluate(fitted, holdout, holdout["label"].to_numpy(), holdout["pattern"].to_numpy())
    metrics = {
        **held, "threshold_review": round(fitted.threshold_review, 6),
        "threshold_decline": round(fitted.threshold_decline, 6),
        "train_rows": len(train), "holdout_rows": len(holdout),
        "fraud_rate": round(float(data["label"].mean()), 5),
        "training_seconds": round(time.perf_counter() - started, 2),
    }
    training = {"generator": "flowgate.fraud.gateway.simulate", "seed": seed, "transactions": transactions,
                "fraud_rate": fraud_rate, "rate_per_s": TRAINING_RATE_PER_S, "code_version": code_version()}
    created = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    model = FraudModel(fitted.feature_names, fitted.means, fitted.scales, fitted.coefficients, fitted.intercept,
                       fitted.threshold_review, fitted.threshold_decline, metrics, training, created)
    return model, metrics

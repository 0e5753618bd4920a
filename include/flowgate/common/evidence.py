"""Where a run keeps the evidence auditors read: Data Docs, mismatch reports.

Locally under ``$FLOWGATE_HOME/evidence`` (or ``FLOWGATE_EVIDENCE_DIR``); one folder per
dataset, business date and run, so a re-run never overwrites the evidence of an earlier
one.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path


def evidence_root() -> Path:
    if os.environ.get("FLOWGATE_EVIDENCE_DIR"):
        return Path(os.environ["FLOWGATE_EVIDENCE_DIR"])
    return Path(os.environ.get("FLOWGATE_HOME", ".flowgate")) / "evidence"


def run_slug(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id).strip("-")


def evidence_dir(dataset: str, business_date: date, run_id: str) -> Path:
    path = evidence_root() / dataset / business_date.isoformat() / run_slug(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path

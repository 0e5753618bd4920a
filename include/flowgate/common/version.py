"""Which code produced a result: recorded in every audit row."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path


@cache
def code_version() -> str:
    """FLOWGATE_CODE_VERSION (set by the image build), else the git commit, else 'unknown'."""
    if os.environ.get("FLOWGATE_CODE_VERSION"):
        return os.environ["FLOWGATE_CODE_VERSION"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if out.returncode == 0:
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"

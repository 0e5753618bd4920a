"""The CRM simulator runs with ``--app-dir include/services`` (it is not part of the
installed package); its in-process tests import it from there the same way."""

from __future__ import annotations

import sys
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[3] / "include" / "services"
if str(SERVICES) not in sys.path:
    sys.path.insert(0, str(SERVICES))

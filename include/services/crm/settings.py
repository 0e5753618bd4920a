"""The simulator's settings, from its environment (set by the devstack or docker compose).

Tokens come through the environment, never argv (which ``ps`` shows) and never the repo:
the devstack generates them per checkout (``.flowgate/secrets/secrets.json``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DEFAULT_EPOCH = "2026-01-01T00:00:00+00:00"


def _required(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set ({what})")
    return value


@dataclass(frozen=True)
class Settings:
    api_token: str            # the bearer token of the crm_api connection
    admin_token: str          # /_chaos, /_simulate, /_reset, /_tokens
    seed: int
    customers: int
    rate_limit_max: int       # requests per token ...
    rate_limit_interval_ms: int  # ... in any rolling window this long
    epoch_ms: int             # where the simulated clock starts

    @classmethod
    def from_env(cls) -> Settings:
        epoch = datetime.fromisoformat(os.environ.get("CRM_EPOCH", DEFAULT_EPOCH))
        if epoch.tzinfo is None:
            epoch = epoch.replace(tzinfo=timezone.utc)
        return cls(
            api_token=_required("CRM_API_TOKEN", "the API's bearer token"),
            admin_token=_required("CRM_ADMIN_TOKEN", "the token of the admin endpoints"),
            seed=int(os.environ.get("CRM_SEED", "13")),
            customers=int(os.environ.get("CRM_CUSTOMERS", "1000")),
            rate_limit_max=int(os.environ.get("CRM_RATE_LIMIT_MAX", "100")),
            rate_limit_interval_ms=int(os.environ.get("CRM_RATE_LIMIT_INTERVAL_MS", "10000")),
            epoch_ms=(epoch - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1),
        )

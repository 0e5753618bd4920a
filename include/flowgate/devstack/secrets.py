"""Generated local credentials: made once per state dir, kept in it, never in the repo."""

from __future__ import annotations

import base64
import json
import os
import secrets as random
from pathlib import Path

from flowgate.devstack.config import StackConfig

# Every secret the local stack needs. Adding a name here is enough to get it generated.
SECRET_NAMES = (
    "postgres_superuser",
    "postgres_flowgate",
    "postgres_airflow",
    "postgres_tokenizer",
    "s3_access_key",
    "s3_secret_key",
    "airflow_admin",
    "airflow_jwt",
    "airflow_api_secret",
    "crm_api_token",     # the CRM simulator's bearer token (the crm_api connection's password)
    "crm_admin_token",   # its /_chaos and /_simulate endpoints
    "identity_hash_key", # Customer 360's HMAC key of emails (the customer_identity connection)
)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def load_secrets(cfg: StackConfig) -> dict[str, str]:
    """The stack's secrets, generating (and persisting, mode 0600) any that are missing."""
    path: Path = cfg.secrets_dir / "secrets.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if name not in known]
    if missing or "airflow_fernet" not in known:
        for name in missing:
            known[name] = random.token_urlsafe(24)
        known.setdefault("airflow_fernet", _fernet_key())
        cfg.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cfg.secrets_dir, 0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return known

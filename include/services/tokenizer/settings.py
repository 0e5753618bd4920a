"""The service's settings, from its environment (set by the devstack or docker compose)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_BATCH = 2_000


@dataclass(frozen=True)
class Settings:
    key_dir: Path                  # envelope private key + HMAC key (generated if missing)
    database_url: str | None       # the vault; None only with TOKENIZER_VAULT=memory
    public_key_export: Path | None  # where to copy the public PEM for the gateway (Docker)

    @classmethod
    def from_env(cls) -> Settings:
        key_dir = os.environ.get("TOKENIZER_KEY_DIR")
        if not key_dir:
            raise RuntimeError("TOKENIZER_KEY_DIR is not set (where the tokenizer's keys live)")
        database_url = os.environ.get("TOKENIZER_DATABASE_URL") or None
        # A vault in memory is for tests of the HTTP contract only: it must be asked for by
        # name, so a missing URL in a real deployment fails at start-up instead.
        if database_url is None and os.environ.get("TOKENIZER_VAULT") != "memory":
            raise RuntimeError("TOKENIZER_DATABASE_URL is not set (or TOKENIZER_VAULT=memory for tests)")
        export = os.environ.get("TOKENIZER_PUBLIC_KEY_EXPORT")
        return cls(Path(key_dir), database_url, Path(export) if export else None)

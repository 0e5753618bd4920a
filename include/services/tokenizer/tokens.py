"""Keyed card tokens (PCI-DSS 3.5.1.1): HMAC-SHA256 with a secret key, never a plain hash.

A plain SHA-256 of a PAN is reversible by brute force (a BIN and a Luhn digit leave ~10^9
candidates); without the key an HMAC is not. The token is deterministic, so the same card
gets the same token across batches, restarts and partitions, and the velocity features
can key their state on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

HMAC_KEY_FILE = "token_hmac.key"
TOKEN_PREFIX = "tok_"


def load_or_create_hmac_key(directory: Path) -> bytes:
    """The 256-bit token key in ``directory`` (0600), created once. Losing it changes every
    token, so it is never regenerated while the file exists."""
    path = directory / HMAC_KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        tmp.replace(path)
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise RuntimeError(f"{path} holds a key shorter than 256 bits")
    return key


def card_token(key: bytes, pan: str) -> str:
    """``tok_`` + base32 of the first 160 bits of HMAC-SHA256(key, PAN).

    Base32 (a-z, 2-7) rather than hex: a token never holds a long digit run, so the PAN
    scanner cannot mistake one for a card number.
    """
    digest = hmac.new(key, pan.encode("ascii"), hashlib.sha256).digest()[:20]
    return TOKEN_PREFIX + base64.b32encode(digest).decode("ascii").lower()

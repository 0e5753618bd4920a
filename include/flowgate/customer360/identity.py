"""Who a person is across sources, without their email: a keyed hash of the normalised address.

Identity stitching (device -> app user -> CRM contact) matches on the email a user signs
in with and the email the CRM holds. The address itself is PII: it may live in
``raw_crm`` and ``customer_360`` only. So the mobile ingest replaces the login's
``properties.email`` with ``properties.email_key`` before anything is stored, and the dbt
project computes the same key from ``raw_crm`` contacts (macro ``keyed_hash``).

The key is HMAC-SHA256 — keyed, never a plain hash: the address space of emails is small
enough to hash exhaustively, so a plain SHA-256 would be an email in all but name. The
secret comes from the ``customer_identity`` connection (its password; the stack's secrets
locally, the secrets backend in production); processes outside Airflow (the Spark job,
dbt) get it through ``FLOWGATE_IDENTITY_HASH_KEY``, never argv.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

IDENTITY_CONN_ID = "customer_identity"
IDENTITY_KEY_ENV = "FLOWGATE_IDENTITY_HASH_KEY"

# Loose on purpose: it finds addresses to pseudonymise in text that failed to parse
# (a rejected message is kept whole otherwise), it does not validate them.
EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def normalised_email(raw: str) -> str:
    """The form both sides hash: no surrounding blanks, lower case."""
    return raw.strip().lower()


def email_key(raw_email: str, key: str) -> str:
    """HMAC-SHA256 of the normalised address under ``key``, as 64 lower-case hex digits."""
    if not key:
        raise ValueError("the identity hash key is empty: set the customer_identity connection "
                         f"(or {IDENTITY_KEY_ENV} outside Airflow)")
    return hmac.new(key.encode(), normalised_email(raw_email).encode(), hashlib.sha256).hexdigest()


def keyed_login(properties: dict, key: str) -> dict:
    """``properties`` with ``email`` replaced by ``email_key`` (a non-string email is dropped
    for the same reason: whatever it is, it was typed into the email field)."""
    if "email" not in properties:
        return properties
    keyed = {k: v for k, v in properties.items() if k != "email"}
    if isinstance(properties["email"], str):
        keyed["email_key"] = email_key(properties["email"], key)
    return keyed


def pseudonymised_text(text: str, key: str) -> str:
    """``text`` with every email-like substring replaced by ``email_key:<hex>``."""
    return EMAIL_IN_TEXT.sub(lambda m: f"email_key:{email_key(m.group(0), key)}", text)


def identity_key_from_env() -> str:
    key = os.environ.get(IDENTITY_KEY_ENV, "")
    if not key:
        raise RuntimeError(f"{IDENTITY_KEY_ENV} is not set: the mobile ingest and dbt need the identity hash key")
    return key


def identity_key(conn_id: str = IDENTITY_CONN_ID) -> str:
    """The key, inside Airflow (a task): the connection's password."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).password or ""

"""Each partner's keys for the local stack, generated once into the secrets dir.

Per partner (one file, ``<secrets>/partner/<partner>.json``, mode 0600, folder 0700):

- ``hmac_key``: 32 random bytes (base64) for the tokens of its pii columns;
- ``aes_key``: 32 random bytes (base64), AES-256 for its restricted columns;
- for contracts with ``format.pgp: true``, two OpenPGP keys (ed25519 sign, cv25519
  encrypt, no passphrase): FlowGate's, which the partner encrypts to and we decrypt with,
  and the partner's, which signs (its private half exists only for the simulator,
  ``flowgate partner deliver``; we verify against its public half and fingerprint).

The platform sees them as one Airflow connection per partner (the contract's
``keys_conn_id``, conn type ``generic``, everything in ``extra``). In production the same
connection comes from the secrets backend, with the partner's real public key.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets as random
from pathlib import Path

from flowgate.devstack.config import StackConfig
from flowgate.partner.contract import Contract, load_contract, partners

KEY_BYTES = 32


def keys_dir(cfg: StackConfig) -> Path:
    return cfg.secrets_dir / "partner"


def _random_key() -> str:
    return base64.b64encode(random.token_bytes(KEY_BYTES)).decode()


def _new_pgp_keys(contract: Contract) -> dict[str, str]:
    from flowgate.partner.pgp import generate_key_pair

    ours = generate_key_pair(f"FlowGate partner ingest ({contract.partner})",
                             f"partner-ingest+{contract.partner}@flowgate.invalid")
    theirs = generate_key_pair(f"{contract.partner} (simulated partner)", f"export@{contract.partner}.invalid")
    return {
        "flowgate_private_key": ours[0], "flowgate_public_key": ours[1], "flowgate_fingerprint": ours[2],
        "partner_private_key": theirs[0], "partner_public_key": theirs[1], "partner_fingerprint": theirs[2],
    }


def partner_keys(cfg: StackConfig, partner: str) -> dict[str, str]:
    """The partner's keys, generating (once, under a lock) whatever is missing."""
    contract = load_contract(partner)
    folder = keys_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.secrets_dir, 0o700)
    os.chmod(folder, 0o700)
    path = folder / f"{partner}.json"
    with os.fdopen(os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once generate one set
        known = json.loads(path.read_text()) if path.exists() else {}
        wanted = dict(known)
        wanted.setdefault("hmac_key", _random_key())
        wanted.setdefault("aes_key", _random_key())
        if contract.format.pgp and "flowgate_private_key" not in wanted:
            wanted.update(_new_pgp_keys(contract))
        if wanted != known:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(wanted, indent=2))
            os.chmod(tmp, 0o600)
            tmp.replace(path)
    return wanted


def keys_connection(cfg: StackConfig, partner: str) -> dict:
    """The ``keys_conn_id`` connection: only what the platform needs (never the partner's
    private key)."""
    keys = partner_keys(cfg, partner)
    extra = {"hmac_key": keys["hmac_key"], "aes_key": keys["aes_key"]}
    if load_contract(partner).format.pgp:
        extra |= {
            "pgp_private_key": keys["flowgate_private_key"],
            "pgp_signer_public_key": keys["partner_public_key"],
            "pgp_signer_fingerprint": keys["partner_fingerprint"],
        }
    return {"conn_type": "generic", "extra": extra}


def connection_ids() -> tuple[str, ...]:
    return tuple(load_contract(p).keys_conn_id for p in partners())


def connections(cfg: StackConfig) -> dict[str, dict]:
    return {load_contract(p).keys_conn_id: keys_connection(cfg, p) for p in partners()}


def partner_signing_material(cfg: StackConfig, partner: str) -> tuple[str, str]:
    """(the partner's armored private signing key, FlowGate's armored public key): what the
    simulated partner needs to encrypt and sign a file for us."""
    if not load_contract(partner).format.pgp:
        raise ValueError(f"{partner}'s contract has no OpenPGP (format.pgp is false)")
    keys = partner_keys(cfg, partner)
    return keys["partner_private_key"], keys["flowgate_public_key"]

"""The contract's column actions that need a key, and the quarantine's file encryption.

- ``tokenize``: HMAC-SHA256 under the partner's secret key, hex. The same value always
  gives the same token, so tokens join (to CRM, across weeks), but without the key no
  one can test a guess: never a plain hash, which a dictionary of emails reverses.
- ``encrypt``: AES-256-GCM, a fresh 96-bit nonce per value, the partner and column bound
  in as associated data (a ciphertext moved to another column does not decrypt). For
  fields a restricted role may need back; the key lives outside the warehouse.
- Quarantined raw files are kept encrypted (they hold the PII the gate refused), in
  framed chunks so a large file is never whole in memory.

Keys come from the partner's keys connection (the stack's secrets locally, a secrets
backend or KMS in production), never from the repo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CIPHERTEXT_PREFIX = "v1."
CIPHERTEXT_PATTERN = r"^v1\.[A-Za-z0-9_-]+$"
_NONCE = 12
_FILE_MAGIC = b"FGQ1"
_FILE_CHUNK = 4 << 20


@dataclass(frozen=True)
class PartnerKeys:
    partner: str
    hmac_key: bytes
    aes_key: bytes
    pgp_private_key: str | None = None
    pgp_signer_public_key: str | None = None
    pgp_signer_fingerprint: str | None = None

    def __post_init__(self):
        if len(self.hmac_key) < 32 or len(self.aes_key) != 32:
            raise ValueError(f"partner {self.partner}: keys must be 32 bytes (HMAC ≥ 32, AES-256 = 32)")

    def __repr__(self) -> str:  # never a key in a log line or a traceback
        return f"PartnerKeys(partner={self.partner!r})"

    @classmethod
    def from_extra(cls, partner: str, extra: dict) -> PartnerKeys:
        return cls(partner=partner, hmac_key=base64.b64decode(extra["hmac_key"]),
                   aes_key=base64.b64decode(extra["aes_key"]),
                   pgp_private_key=extra.get("pgp_private_key"),
                   pgp_signer_public_key=extra.get("pgp_signer_public_key"),
                   pgp_signer_fingerprint=extra.get("pgp_signer_fingerprint"))


def load_keys(partner: str, conn_id: str) -> PartnerKeys:
    """The partner's keys from its Airflow connection (``extra``: base64 keys, PGP material)."""
    from airflow.sdk import BaseHook

    return PartnerKeys.from_extra(partner, BaseHook.get_connection(conn_id).extra_dejson)


def tokenize_values(key: bytes, values: Iterable[str | None]) -> list[str | None]:
    """HMAC-SHA256 hex per value; a missing value stays missing.

    HMAC computed by its definition (RFC 2104): SHA-256 states with the inner and outer
    padded keys absorbed once, copied per value. The same bytes as ``hmac.new``, at half
    the cost per value (``hmac``'s Python wrapper was most of it on a million values).
    """
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(padded.translate(_IPAD))
    outer = hashlib.sha256(padded.translate(_OPAD))
    inner_copy, outer_copy = inner.copy, outer.copy
    out = []
    append = out.append
    for value in values:
        if value is None:
            append(None)
            continue
        mac = inner_copy()
        mac.update(value.encode())
        final = outer_copy()
        final.update(mac.digest())
        append(final.hexdigest())
    return out


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _aad(partner: str, column: str) -> bytes:
    return f"flowgate.partner/{partner}/{column}".encode()


def encrypt_values(key: bytes, partner: str, column: str, values: Iterable[str | None]) -> list[str | None]:
    """``v1.`` + unpadded URL-safe base64 of nonce + AES-256-GCM ciphertext and tag, per value.

    The nonces come from one ``os.urandom`` call per batch (12 fresh random bytes per
    value all the same, without a system call each).
    """
    values = values if isinstance(values, list) else list(values)
    aead, aad = AESGCM(key), _aad(partner, column)
    seal, b2a, urlsafe, prefix = aead.encrypt, binascii.b2a_base64, _URLSAFE, CIPHERTEXT_PREFIX
    nonces = os.urandom(_NONCE * len(values))
    out = []
    append = out.append
    for i, value in enumerate(values):
        if value is None:
            append(None)
            continue
        nonce = nonces[_NONCE * i:_NONCE * (i + 1)]
        sealed = b2a(nonce + seal(nonce, value.encode(), aad), newline=False)
        append(prefix + sealed.translate(urlsafe).rstrip(b"=").decode())
    return out


def decrypt_value(key: bytes, partner: str, column: str, ciphertext: str) -> str:
    """What a restricted role runs to read an encrypted field back."""
    if not ciphertext.startswith(CIPHERTEXT_PREFIX):
        raise ValueError("not a FlowGate partner ciphertext")
    body = ciphertext[len(CIPHERTEXT_PREFIX):]
    sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(partner, column)).decode()


def encrypt_file(key: bytes, source: BinaryIO, label: str) -> Iterator[bytes]:
    """A file as framed AES-256-GCM chunks: magic, then per chunk length + nonce + sealed
    bytes; the chunk index and ``label`` are bound in, so chunks cannot be reordered,
    dropped at the end (a final empty chunk closes the file) or moved to another file."""
    aead = AESGCM(key)
    yield _FILE_MAGIC
    index = 0
    while True:
        chunk = source.read(_FILE_CHUNK)
        nonce = os.urandom(_NONCE)
        sealed = aead.encrypt(nonce, chunk, f"{label}/{index}/{'last' if not chunk else 'part'}".encode())
        yield struct.pack(">I", len(sealed)) + nonce + sealed
        if not chunk:
            return
        index += 1


def decrypt_file(key: bytes, source: BinaryIO, label: str) -> Iterator[bytes]:
    """The inverse of :func:`encrypt_file`; raises on any tampering or truncation."""
    aead = AESGCM(key)
    if source.read(len(_FILE_MAGIC)) != _FILE_MAGIC:
        raise ValueError("not a FlowGate quarantine file")
    index = 0
    while True:
        head = source.read(4 + _NONCE)
        if len(head) < 4 + _NONCE:
            raise ValueError("quarantine file is truncated")
        (size,) = struct.unpack(">I", head[:4])
        sealed = source.read(size)
        try:
            chunk = aead.decrypt(head[4:], sealed, f"{label}/{index}/part".encode())
        except Exception:
            aead.decrypt(head[4:], sealed, f"{label}/{index}/last".encode())  # raises if neither
            return
        yield chunk
        index += 1

"""The public-key envelope the gateway seals each PAN in; only the tokenizer can open it.

X25519 ephemeral-static ECDH, HKDF-SHA256, AES-256-GCM (an ECIES-style hybrid): the
gateway needs only the tokenizer's public key, a fresh ephemeral key per envelope gives
each PAN its own AES key, and the cost is a few tens of microseconds where RSA-OAEP
decryption would cap the tokenizer well below 2,000 envelopes/s.

Wire format (ASCII, safe in JSON and Kafka):
    "v1." + base64url_nopad(ephemeral_public[32] || nonce[12] || ciphertext || tag[16])

The ephemeral public key is also the GCM associated data, so it cannot be swapped.
Errors never carry the PAN or the envelope body.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1."
PRIVATE_KEY_FILE = "envelope_x25519.pem"
PUBLIC_KEY_FILE = "envelope_x25519.pub.pem"
_HKDF_INFO = b"flowgate/pan-envelope/v1"
_KEY_LEN, _NONCE_LEN, _TAG_LEN = 32, 12, 16
_MAX_ENVELOPE_CHARS = 256  # a 19-digit PAN seals to ~110 chars; anything far longer is junk


class EnvelopeError(ValueError):
    """An envelope that cannot be opened; ``reason`` is safe to log (no PAN, no body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """(private PEM, public PEM) in ``directory``; existing keys are kept (idempotent).

    The private key is written 0600 (directory 0700) before any content lands in it.
    """
    directory = Path(directory)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if not private_path.exists():
        key = X25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _write_private(private_path, pem)
        public_path.unlink(missing_ok=True)  # a stale public key must not outlive its private key
    if not public_path.exists():
        public = load_private_key(private_path).public_key()
        public_path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def load_public_key(path: Path | str) -> X25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, X25519PublicKey):
        raise TypeError(f"{path} is not an X25519 public key")
    return key


def load_private_key(path: Path | str) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise TypeError(f"{path} is not an X25519 private key")
    return key


def _aes_key(shared: bytes, ephemeral_raw: bytes, recipient_raw: bytes) -> bytes:
    # Both public keys in the salt bind the derived key to this exact exchange.
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_LEN, salt=ephemeral_raw + recipient_raw,
                info=_HKDF_INFO).derive(shared)


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal_pan(public_key: X25519PublicKey, pan: str) -> str:
    """Seal ``pan`` for the holder of the private key matching ``public_key``."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = _raw(ephemeral.public_key())
    key = _aes_key(ephemeral.exchange(public_key), ephemeral_raw, _raw(public_key))
    nonce = os.urandom(_NONCE_LEN)
    sealed = AESGCM(key).encrypt(nonce, pan.encode("ascii"), ephemeral_raw)
    return VERSION + base64.urlsafe_b64encode(ephemeral_raw + nonce + sealed).rstrip(b"=").decode("ascii")


def open_envelope(private_key: X25519PrivateKey, envelope: str) -> str:
    """The PAN inside ``envelope``; raises :class:`EnvelopeError` if malformed or tampered."""
    if not isinstance(envelope, str):
        raise EnvelopeError("envelope is not a string")
    if not envelope.startswith(VERSION):
        raise EnvelopeError("unknown envelope version")
    if len(envelope) > _MAX_ENVELOPE_CHARS:
        raise EnvelopeError("envelope too long")
    body = envelope[len(VERSION):]
    try:
        # validate=True: the lenient decoder would silently drop characters outside the alphabet.
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("envelope is not base64url") from None
    if len(raw) < 32 + _NONCE_LEN + _TAG_LEN + 1:
        raise EnvelopeError("envelope too short")
    ephemeral_raw, nonce, sealed = raw[:32], raw[32:32 + _NONCE_LEN], raw[32 + _NONCE_LEN:]
    try:
        ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
        shared = private_key.exchange(ephemeral)
    except ValueError:
        raise EnvelopeError("invalid ephemeral key") from None
    key = _aes_key(shared, ephemeral_raw, _raw(private_key.public_key()))
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, ephemeral_raw)
    except InvalidTag:
        raise EnvelopeError("envelope authentication failed (tampered or wrong key)") from None
    pan = plain.decode("ascii", errors="replace")
    if not (pan.isascii() and pan.isdigit() and 12 <= len(pan) <= 19):
        raise EnvelopeError("envelope does not hold a card number")
    return pan

"""OpenPGP for partner files: the partner encrypts to our key and signs with theirs.

Each call runs gpg (through python-gnupg) in a fresh, private GNUPGHOME holding only the
keys it was handed, so nothing depends on a machine's keyring and no key outlives the
call: the home is removed afterwards and the gpg-agent it spawned is killed. Files are
streamed through gpg (``--output``), never read into memory.

A file we cannot accept raises :class:`PgpRejected` with a reason the quarantine report
records (``bad_signature``, ``wrong_key``, ``not_pgp``) and a message that never quotes
the file's content; no plaintext is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import gnupg

Reason = Literal["bad_signature", "wrong_key", "not_pgp"]
REASONS: tuple[Reason, ...] = ("bad_signature", "wrong_key", "not_pgp")

# Never prompt (keys carry no passphrase; a prompt would hang a task), never fetch keys
# from the network, and no OpenPGP compression: partner files are gzip'd already.
_GPG_ARGS = ["--pinentry-mode", "error", "--no-auto-key-retrieve", "--compress-algo", "none"]


class PgpRejected(Exception):
    """A partner file failed decryption or signature verification."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class PgpError(RuntimeError):
    """gpg itself failed (a broken key given to us, a missing binary): not the file's fault."""


@contextlib.contextmanager
def gpg_home() -> Iterator[gnupg.GPG]:
    """A throwaway keyring (mode 0700), removed with its gpg-agent when the block ends."""
    home = tempfile.mkdtemp(prefix="flowgate-gpg-")
    os.chmod(home, 0o700)
    try:
        yield gnupg.GPG(gnupghome=home)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(home, ignore_errors=True)


def import_key(gpg: gnupg.GPG, armored: str, what: str) -> str:
    """Import one armored key; its primary fingerprint."""
    result = gpg.import_keys(armored)
    fingerprints = sorted(set(result.fingerprints))
    if len(fingerprints) != 1:
        raise PgpError(f"{what}: expected one OpenPGP key, got {len(fingerprints)}")
    return fingerprints[0]


def generate_key_pair(name: str, email: str) -> tuple[str, str, str]:
    """A new OpenPGP key without passphrase: ed25519 (sign) with a cv25519 encryption
    subkey. Returns (armored private key, armored public key, fingerprint)."""
    with gpg_home() as gpg:
        spec = gpg.gen_key_input(
            key_type="EDDSA", key_curve="ed25519", key_usage="sign",
            subkey_type="ECDH", subkey_curve="cv25519", subkey_usage="encrypt",
            name_real=name, name_email=email, expire_date=0, no_protection=True,
        )
        key = gpg.gen_key(spec)
        if not key.fingerprint:
            raise PgpError(f"gpg could not generate a key for {name}: {key.status}")
        private = gpg.export_keys(key.fingerprint, secret=True, armor=True, expect_passphrase=False)
        public = gpg.export_keys(key.fingerprint, armor=True)
        if "PRIVATE KEY BLOCK" not in private or "PUBLIC KEY BLOCK" not in public:
            raise PgpError(f"gpg could not export the key of {name}")
        return private, public, key.fingerprint


def _part(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.part")


def encrypt_and_sign(src: Path, dst: Path, recipient_public_key: str, signer_private_key: str) -> None:
    """Encrypt ``src`` to the recipient and sign it with the signer's key (binary OpenPGP)."""
    src, dst = Path(src), Path(dst)
    tmp = _part(dst)
    with gpg_home() as gpg:
        recipient = import_key(gpg, recipient_public_key, "recipient public key")
        signer = import_key(gpg, signer_private_key, "signer private key")
        try:
            result = gpg.encrypt_file(str(src), recipients=[recipient], sign=signer, always_trust=True,
                                      armor=False, output=str(tmp), extra_args=_GPG_ARGS)
            if not result.ok:
                raise PgpError(f"gpg could not encrypt and sign {src.name}: {result.status}")
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)


def _statuses(result) -> dict[str, list[list[str]]]:
    """gpg's machine-readable status lines (``[GNUPG:] KEYWORD args``), by keyword."""
    found: dict[str, list[list[str]]] = {}
    for line in (result.stderr or "").splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *args = line[9:].split()
            found.setdefault(keyword, []).append(args)
    return found


def _rejection(result, signer_fingerprint: str) -> PgpRejected | None:
    """Why a ``gpg --decrypt`` is not acceptable (None: it is), from gpg's status lines."""
    status = _statuses(result)
    decrypted = "DECRYPTION_OKAY" in status
    signed = bool(status.keys() & {"NEWSIG", "GOODSIG", "BADSIG", "ERRSIG", "VALIDSIG"})
    if "NEED_PASSPHRASE_SYM" in status or ("NO_SECKEY" in status and not decrypted):
        return PgpRejected("wrong_key", "the file is not encrypted to FlowGate's key")
    if "BEGIN_DECRYPTION" not in status and "ENC_TO" not in status:
        if signed or "PLAINTEXT" in status:
            return PgpRejected("wrong_key", "the file is not encrypted (signed or plain OpenPGP only)")
        return PgpRejected("not_pgp", "the file holds no OpenPGP message")
    if status.keys() & {"BADSIG", "BADMDC", "DECRYPTION_FAILED"}:
        return PgpRejected("bad_signature", "the file fails its signature or integrity check (altered or truncated)")
    if status.keys() & {"ERRSIG", "NO_PUBKEY", "EXPKEYSIG", "REVKEYSIG", "EXPSIG"}:
        return PgpRejected("bad_signature", "the file is signed by a key that is not the partner's")
    if not signed:
        return PgpRejected("bad_signature", "the file is not signed")
    signers = {(args[9] if len(args) >= 10 else args[0]).upper() for args in status.get("VALIDSIG", [])}
    if not decrypted or result.returncode != 0 or "GOODSIG" not in status or not signers:
        return PgpRejected("bad_signature", "gpg does not confirm the file's decryption and signature")
    if signers != {signer_fingerprint.upper()}:
        return PgpRejected("bad_signature", "the file is signed by a key that is not the partner's")
    return None


def decrypt_and_verify(src: Path, dst: Path, private_key: str, signer_public_key: str,
                       signer_fingerprint: str) -> str:
    """Decrypt ``src`` with our key into ``dst``, requiring a valid signature by exactly
    ``signer_fingerprint``. Returns the verified fingerprint; raises :class:`PgpRejected`
    (and leaves no ``dst``) otherwise."""
    src, dst = Path(src), Path(dst)
    tmp = _part(dst)
    with gpg_home() as gpg:
        import_key(gpg, private_key, "FlowGate private key")
        signer = import_key(gpg, signer_public_key, "partner signing key")
        if signer.upper() != signer_fingerprint.upper().replace(" ", ""):
            raise PgpError("the partner signing key does not have the pinned fingerprint")
        try:
            result = gpg.decrypt_file(str(src), always_trust=True, output=str(tmp), extra_args=_GPG_ARGS)
            rejection = _rejection(result, signer)
            if rejection is not None:
                dst.unlink(missing_ok=True)  # no earlier plaintext stands in for a rejected file
                raise rejection
            os.replace(tmp, dst)
            return signer
        finally:
            tmp.unlink(missing_ok=True)

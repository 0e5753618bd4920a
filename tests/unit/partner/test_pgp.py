"""partner.pgp with the real gpg: what is accepted, each way a file is rejected, and that
nothing (plaintext, keyring, agent) is left behind."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from flowgate.partner import pgp

MARKER = b"FLOWGATE-PLAINTEXT-MARKER-7f3a"  # must never appear in an error message
pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed (Debian: gnupg)")


@pytest.fixture(scope="module")
def keys():
    """Throwaway key pairs: (private, public, fingerprint) each."""
    return {
        "flowgate": pgp.generate_key_pair("FlowGate test", "flowgate@test.invalid"),
        "partner": pgp.generate_key_pair("Partner test", "partner@test.invalid"),
        "other": pgp.generate_key_pair("Someone else", "other@test.invalid"),
    }


@pytest.fixture
def plain(tmp_path) -> Path:
    path = tmp_path / "file.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n" + MARKER + b",1\n" * 1000, mtime=0))
    return path


def _encrypt(src: Path, dst: Path, keys, recipient="flowgate", signer="partner") -> Path:
    pgp.encrypt_and_sign(src, dst, keys[recipient][1], keys[signer][0])
    return dst


def _decrypt(src: Path, dst: Path, keys) -> str:
    return pgp.decrypt_and_verify(src, dst, keys["flowgate"][0], keys["partner"][1], keys["partner"][2])


def _rejected(src: Path, dst: Path, keys) -> pgp.PgpRejected:
    with pytest.raises(pgp.PgpRejected) as caught:
        _decrypt(src, dst, keys)
    assert not dst.exists(), "a rejected file left plaintext behind"
    assert not [p for p in dst.parent.iterdir() if p.name.endswith(".part")]
    assert MARKER.decode() not in str(caught.value)
    return caught.value


def test_keys_are_ed25519_with_a_cv25519_subkey_and_no_passphrase(keys):
    private, public, fingerprint = keys["flowgate"]
    assert "BEGIN PGP PRIVATE KEY BLOCK" in private and "BEGIN PGP PUBLIC KEY BLOCK" in public
    with pgp.gpg_home() as gpg:
        pgp.import_key(gpg, private, "test")
        (key,) = gpg.list_keys(secret=True)
    assert key["fingerprint"] == fingerprint
    assert (key["algo"], key["curve"], key["cap"][:2]) == ("22", "ed25519", "sc")  # EdDSA: sign, certify
    (subkey,) = key["subkey_info"].values()
    assert (subkey["algo"], subkey["curve"], subkey["cap"]) == ("18", "cv25519", "e")  # ECDH: encrypt
    # No passphrase: the round-trip tests sign and decrypt with it and nothing to enter.


def test_a_file_encrypted_to_us_and_signed_by_the_partner_round_trips(keys, plain, tmp_path):
    sealed = _encrypt(plain, tmp_path / "file.csv.gz.pgp", keys)
    assert MARKER not in sealed.read_bytes() and not sealed.read_bytes().startswith(b"-----BEGIN")  # binary

    fingerprint = _decrypt(sealed, tmp_path / "out.csv.gz", keys)

    assert fingerprint == keys["partner"][2]
    assert (tmp_path / "out.csv.gz").read_bytes() == plain.read_bytes()


def test_signed_by_another_key_is_a_bad_signature(keys, plain, tmp_path):
    sealed = _encrypt(plain, tmp_path / "f.pgp", keys, signer="other")
    assert _rejected(sealed, tmp_path / "out", keys).reason == "bad_signature"


def test_a_tampered_file_is_a_bad_signature(keys, plain, tmp_path):
    data = bytearray(_encrypt(plain, tmp_path / "f.pgp", keys).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "tampered.pgp").write_bytes(bytes(data))
    assert _rejected(tmp_path / "tampered.pgp", tmp_path / "out", keys).reason == "bad_signature"


def test_a_truncated_file_is_a_bad_signature(keys, plain, tmp_path):
    data = _encrypt(plain, tmp_path / "f.pgp", keys).read_bytes()
    (tmp_path / "cut.pgp").write_bytes(data[: len(data) * 2 // 3])
    assert _rejected(tmp_path / "cut.pgp", tmp_path / "out", keys).reason == "bad_signature"


def test_an_unsigned_file_is_a_bad_signature(keys, plain, tmp_path):
    with pgp.gpg_home() as gpg:
        recipient = pgp.import_key(gpg, keys["flowgate"][1], "recipient")
        assert gpg.encrypt_file(str(plain), [recipient], always_trust=True, armor=False,
                                output=str(tmp_path / "unsigned.pgp")).ok
    error = _rejected(tmp_path / "unsigned.pgp", tmp_path / "out", keys)
    assert (error.reason, error.message) == ("bad_signature", "the file is not signed")


def test_a_file_encrypted_to_another_key_is_the_wrong_key(keys, plain, tmp_path):
    sealed = _encrypt(plain, tmp_path / "f.pgp", keys, recipient="other")
    assert _rejected(sealed, tmp_path / "out", keys).reason == "wrong_key"


def test_a_signed_but_unencrypted_file_is_the_wrong_key(keys, plain, tmp_path):
    with pgp.gpg_home() as gpg:
        signer = pgp.import_key(gpg, keys["partner"][0], "signer")
        assert gpg.sign_file(str(plain), keyid=signer, binary=True, output=str(tmp_path / "signed.pgp"))
    assert _rejected(tmp_path / "signed.pgp", tmp_path / "out", keys).reason == "wrong_key"


@pytest.mark.parametrize("content", [b"", MARKER * 10, gzip.compress(MARKER)], ids=["empty", "text", "gzip"])
def test_anything_else_is_not_pgp(keys, tmp_path, content):
    (tmp_path / "f.pgp").write_bytes(content)
    assert _rejected(tmp_path / "f.pgp", tmp_path / "out", keys).reason == "not_pgp"


def test_a_rejected_file_removes_an_earlier_plaintext_at_the_destination(keys, plain, tmp_path):
    (tmp_path / "out").write_bytes(b"an earlier file")
    sealed = _encrypt(plain, tmp_path / "f.pgp", keys, signer="other")
    _rejected(sealed, tmp_path / "out", keys)


def test_a_signing_key_that_is_not_the_pinned_fingerprint_is_refused(keys, plain, tmp_path):
    sealed = _encrypt(plain, tmp_path / "f.pgp", keys)
    with pytest.raises(pgp.PgpError, match="pinned fingerprint"):
        pgp.decrypt_and_verify(sealed, tmp_path / "out", keys["flowgate"][0], keys["other"][1], keys["partner"][2])
    assert not (tmp_path / "out").exists()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_each_call_uses_a_private_gnupghome_removed_with_its_agent(keys, plain, tmp_path, monkeypatch):
    homes = []
    real_mkdtemp = pgp.tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        home = real_mkdtemp(*args, **kwargs)
        homes.append((home, os.stat(home).st_mode & 0o777))
        return home

    monkeypatch.setattr(pgp.tempfile, "mkdtemp", recording_mkdtemp)
    _decrypt(_encrypt(plain, tmp_path / "f.pgp", keys), tmp_path / "out", keys)
    with pytest.raises(pgp.PgpRejected):
        _decrypt(_encrypt(plain, tmp_path / "g.pgp", keys, signer="other"), tmp_path / "out2", keys)

    assert len(homes) == 4
    for home, mode in homes:
        assert mode == 0o700
        assert not Path(home).exists(), f"{home} was left behind"
        assert not _processes_mentioning(home), f"a gpg-agent of {home} is still running"


# --- the local stack's partner keys (devstack/partner_keys.py) ---------------------------

def test_stack_partner_keys_are_made_once_private_and_pgp_only_where_the_contract_says(tmp_path, monkeypatch):
    import base64
    import stat

    from flowgate.devstack import partner_keys
    from flowgate.devstack.config import StackConfig

    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path / "state"))
    cfg = StackConfig.from_env()
    acme, globex = partner_keys.keys_connection(cfg, "acme"), partner_keys.keys_connection(cfg, "globex")

    assert partner_keys.keys_connection(cfg, "globex") == globex, "generated once, then read back"
    assert acme["conn_type"] == globex["conn_type"] == "generic"
    assert set(acme["extra"]) == {"hmac_key", "aes_key"}
    assert set(globex["extra"]) == {"hmac_key", "aes_key", "pgp_private_key", "pgp_signer_public_key",
                                    "pgp_signer_fingerprint"}
    for extra in (acme["extra"], globex["extra"]):
        assert len(base64.b64decode(extra["hmac_key"])) == len(base64.b64decode(extra["aes_key"])) == 32
    assert acme["extra"]["hmac_key"] != globex["extra"]["hmac_key"]
    folder = partner_keys.keys_dir(cfg)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    signer_private, our_public = partner_keys.partner_signing_material(cfg, "globex")
    assert signer_private not in str(globex), "the partner's private key never reaches the platform"
    with pytest.raises(ValueError, match="pgp"):
        partner_keys.partner_signing_material(cfg, "acme")


def test_what_the_simulator_signs_opens_with_the_platforms_keys_connection(tmp_path, monkeypatch, plain):
    from flowgate.devstack import partner_keys
    from flowgate.devstack.config import StackConfig

    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path / "state"))
    cfg = StackConfig.from_env()
    signer_private, our_public = partner_keys.partner_signing_material(cfg, "globex")
    pgp.encrypt_and_sign(plain, tmp_path / "f.pgp", our_public, signer_private)
    extra = partner_keys.keys_connection(cfg, "globex")["extra"]

    fingerprint = pgp.decrypt_and_verify(tmp_path / "f.pgp", tmp_path / "out", extra["pgp_private_key"],
                                         extra["pgp_signer_public_key"], extra["pgp_signer_fingerprint"])

    assert fingerprint == extra["pgp_signer_fingerprint"]
    assert (tmp_path / "out").read_bytes() == plain.read_bytes()

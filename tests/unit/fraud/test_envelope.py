"""The PAN envelope: round trip, and every kind of damage is an EnvelopeError without the PAN."""

from __future__ import annotations

import base64
import random
import stat

import pytest

from flowgate.fraud.envelope import (
    EnvelopeError,
    generate_keypair,
    load_private_key,
    load_public_key,
    open_envelope,
    seal_pan,
)
from flowgate.fraud.pan import synthetic_pan


@pytest.fixture
def keys(tmp_path):
    private_path, public_path = generate_keypair(tmp_path / "keys")
    return load_private_key(private_path), load_public_key(public_path)


@pytest.fixture
def pan():
    return synthetic_pan(random.Random(7), "visa")


def _b64(envelope: str) -> bytes:
    body = envelope[3:]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _envelope(raw: bytes) -> str:
    return "v1." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_sealed_pan_opens_with_the_private_key(keys, pan):
    private, public = keys
    envelope = seal_pan(public, pan)
    assert envelope.startswith("v1.") and pan not in envelope
    assert open_envelope(private, envelope) == pan


def test_each_seal_is_different_even_for_the_same_pan(keys, pan):
    _, public = keys
    assert seal_pan(public, pan) != seal_pan(public, pan)  # fresh ephemeral key and nonce


def test_keypair_is_private_and_generated_once(tmp_path):
    private_path, public_path = generate_keypair(tmp_path / "k")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    first = (private_path.read_bytes(), public_path.read_bytes())
    assert generate_keypair(tmp_path / "k") == (private_path, public_path)
    assert (private_path.read_bytes(), public_path.read_bytes()) == first


def test_a_lost_public_key_is_rederived_from_the_kept_private_key(tmp_path, pan):
    private_path, public_path = generate_keypair(tmp_path / "k")
    public_path.unlink()
    generate_keypair(tmp_path / "k")
    envelope = seal_pan(load_public_key(public_path), pan)
    assert open_envelope(load_private_key(private_path), envelope) == pan


def test_another_key_cannot_open_it(keys, tmp_path, pan):
    _, public = keys
    other_private, _ = generate_keypair(tmp_path / "other")
    with pytest.raises(EnvelopeError, match="authentication failed") as err:
        open_envelope(load_private_key(other_private), seal_pan(public, pan))
    assert pan not in str(err.value)


@pytest.mark.parametrize("part", ["ephemeral", "nonce", "ciphertext", "tag"])
def test_any_flipped_bit_is_detected(keys, pan, part):
    private, public = keys
    raw = bytearray(_b64(seal_pan(public, pan)))
    index = {"ephemeral": 5, "nonce": 32 + 3, "ciphertext": 44 + 2, "tag": len(raw) - 1}[part]
    raw[index] ^= 0x01
    with pytest.raises(EnvelopeError) as err:
        open_envelope(private, _envelope(bytes(raw)))
    assert pan not in str(err.value) and pan not in repr(err.value)


@pytest.mark.parametrize("envelope, reason", [
    ("v2.AAAA", "unknown envelope version"),
    ("", "unknown envelope version"),
    ("v1.***", "not base64url"),
    ("v1.AAAA", "too short"),
    ("v1." + "A" * 400, "too long"),
    (None, "not a string"),
])
def test_malformed_envelopes_are_rejected_with_a_reason(keys, envelope, reason):
    private, _ = keys
    with pytest.raises(EnvelopeError, match=reason):
        open_envelope(private, envelope)


def test_an_envelope_holding_something_else_than_a_card_number_is_rejected(keys):
    private, public = keys
    with pytest.raises(EnvelopeError, match="does not hold a card number"):
        open_envelope(private, seal_pan(public, "not-a-pan"))

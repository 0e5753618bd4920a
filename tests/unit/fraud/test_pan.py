"""Synthetic PANs: Luhn-valid, the right prefix and length per network, reproducible."""

from __future__ import annotations

import random

import pytest

from flowgate.fraud.pan import NETWORKS, luhn_valid, synthetic_pan


def test_luhn_accepts_known_test_numbers_and_rejects_a_changed_digit():
    # The networks' published test numbers, written in pieces so no fixture holds a PAN.
    for number in ("4111" + "1111" * 3, "5555" + "5555" + "5555" + "4444", "3782" + "822463" + "10005"):
        assert luhn_valid(number)
        changed = number[:-1] + str((int(number[-1]) + 1) % 10)
        assert not luhn_valid(changed)


@pytest.mark.parametrize("text", ["", "7", "4111-1111", "41111111111111x1", "٤١١١١١١١١١١١١١١١"])
def test_luhn_rejects_what_is_not_a_string_of_ascii_digits(text):
    assert not luhn_valid(text)


@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_synthetic_pans_have_the_network_prefix_and_length_and_pass_luhn(network):
    rng = random.Random(11)
    prefixes, length = NETWORKS[network]
    for _ in range(500):
        pan = synthetic_pan(rng, network)
        assert len(pan) == length and pan.isdigit()
        assert pan.startswith(prefixes)
        assert luhn_valid(pan)


def test_mastercard_uses_both_the_5_and_the_2_series():
    rng = random.Random(3)
    firsts = {synthetic_pan(rng, "mastercard")[0] for _ in range(2000)}
    assert firsts == {"2", "5"}


def test_the_same_seed_gives_the_same_pans_and_no_network_gives_a_mix():
    first = [synthetic_pan(random.Random(42)) for _ in range(1)]
    assert first == [synthetic_pan(random.Random(42))]
    rng = random.Random(42)
    lengths = {len(synthetic_pan(rng)) for _ in range(200)}
    assert lengths == {15, 16}  # Amex among the others


def test_an_unknown_network_is_an_error():
    with pytest.raises(ValueError, match="unknown card network"):
        synthetic_pan(random.Random(1), "diners-club-moon")

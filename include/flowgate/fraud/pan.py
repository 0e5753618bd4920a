"""Synthetic card numbers and the Luhn rule.

Synthetic PANs exist only in memory while a test or the gateway simulator runs: nothing
here writes one anywhere, and no fixture holds one (the PAN scanner would flag it).
"""

from __future__ import annotations

import random

# network -> (prefixes, length). Prefix ranges as the networks publish them; a synthetic
# PAN looks real to a BIN check and a PAN scanner, which is the point.
NETWORKS: dict[str, tuple[tuple[str, ...], int]] = {
    "visa": (("4",), 16),
    "mastercard": (tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)), 16),
    "amex": (("34", "37"), 15),
    "discover": (("6011", "65"), 16),
}


def luhn_checksum(digits: str) -> int:
    """The Luhn sum mod 10 of ``digits`` (0 means valid)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (ASCII digits only, at least two) passes the Luhn check."""
    if len(digits) < 2 or not (digits.isascii() and digits.isdigit()):
        return False
    return luhn_checksum(digits) == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` Luhn-valid."""
    return str((10 - luhn_checksum(partial + "0")) % 10)


def synthetic_pan(rng: random.Random, network: str | None = None) -> str:
    """A Luhn-valid PAN with a realistic prefix for ``network`` (random network if None).

    Deterministic for a seeded ``rng``, so a test or a load run can be replayed.
    """
    name = network or rng.choice(sorted(NETWORKS))
    try:
        prefixes, length = NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown card network {name!r}; known: {', '.join(sorted(NETWORKS))}") from None
    prefix = rng.choice(prefixes)
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)

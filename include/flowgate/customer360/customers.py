"""Customer *i* of a seed: who they are, the same on every run and in every simulator.

The CRM simulator seeds its contacts from here, and the mobile app simulator can log
the same people in, so identity stitching later has real matches to find. Emails come
back the way people type them into forms — a few with capitals or stray spaces — so the
stitching has to normalise before it hashes. Every address is on an ``example.*`` domain
(RFC 2606) and every phone number in the 555-01xx fictional range: synthetic PII only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
    "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Adams", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Horvat", "Ito", "Jensen", "Kowalski",
    "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Silva", "Tanaka", "Ueda", "Varga",
    "Weber", "Yilmaz", "Zhang",
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
INDUSTRIES = ("BANKING", "RETAIL", "SOFTWARE", "INSURANCE", "LOGISTICS", "HEALTHCARE")
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "PL", "GB", "US")
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer")

CUSTOMERS_PER_COMPANY = 10
DEFAULT_SEED = 13  # the CRM simulator's seed in the stack and in compose (CRM_SEED)


@dataclass(frozen=True)
class Customer:
    index: int
    first_name: str
    last_name: str
    email: str          # as typed: normalise (strip, lower) before matching
    phone: str
    company_index: int
    lifecycle_stage: str


@dataclass(frozen=True)
class Company:
    index: int
    name: str
    domain: str
    industry: str
    country: str


def _rng(seed: int, kind: str, index: int) -> random.Random:
    # One generator per (seed, kind, index): customer 7 is the same whether 10 or 10,000
    # customers were generated, and whoever asks first.
    return random.Random(f"{seed}:{kind}:{index}")


def customer(seed: int, index: int, companies: int) -> Customer:
    """Customer ``index`` (0-based) of ``seed``, working for one of ``companies`` companies."""
    rng = _rng(seed, "customer", index)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}{index}@{rng.choice(EMAIL_DOMAINS)}".lower()
    style = rng.random()
    if style < 0.05:
        email = email.title()            # "Ada.Brown7@Example.Com": capitals from a form
    elif style < 0.08:
        email = f" {email} "             # stray spaces from a copy-paste
    phone = f"+1-202-555-01{index % 100:02d}" if rng.random() < 0.9 else ""  # 555-0100..0199
    return Customer(
        index=index, first_name=first, last_name=last, email=email, phone=phone,
        company_index=rng.randrange(max(companies, 1)),
        lifecycle_stage=rng.choice(LIFECYCLE_STAGES),
    )


def company(seed: int, index: int) -> Company:
    rng = _rng(seed, "company", index)
    stem = f"{rng.choice(LAST_NAMES)} {rng.choice(('Holdings', 'Labs', 'Group', 'Partners', 'Works'))}"
    return Company(
        index=index, name=f"{stem} {index}", domain=f"{stem.split()[0].lower()}{index}.example.com",
        industry=rng.choice(INDUSTRIES), country=rng.choice(COUNTRIES),
    )


def company_count(customers: int) -> int:
    return max(1, customers // CUSTOMERS_PER_COMPANY)



"""Customer i of a seed: the same wherever it is asked for, and synthetic PII only."""

from __future__ import annotations

import re

from flowgate.customer360.customers import company, customer
from flowgate.customer360.identity import normalised_email


def test_a_customer_depends_on_seed_and_index_only():
    assert customer(7, 42, companies=100) == customer(7, 42, companies=100)
    forwards = [customer(7, i, 100) for i in range(50)]
    backwards = [customer(7, i, 100) for i in reversed(range(50))][::-1]
    assert forwards == backwards
    assert customer(8, 42, 100) != customer(7, 42, 100)
    assert company(7, 3) == company(7, 3)


def test_emails_are_unique_per_index_and_phones_fictional():
    people = [customer(13, i, 100) for i in range(2_000)]
    assert len({normalised_email(p.email) for p in people}) == len(people)
    for p in people:
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.(com|org|net)", normalised_email(p.email))
        assert p.phone == "" or re.fullmatch(r"\+1-202-555-01\d\d", p.phone)
        assert 0 <= p.company_index < 100


def test_some_emails_come_as_typed_and_normalise_to_one_address():
    people = [customer(13, i, 100) for i in range(2_000)]
    messy = [p for p in people if p.email != normalised_email(p.email)]
    assert 50 < len(messy) < 300, "a few capitals and stray spaces, as forms deliver them"
    assert normalised_email("  Ada.Brown7@Example.COM ") == "ada.brown7@example.com"

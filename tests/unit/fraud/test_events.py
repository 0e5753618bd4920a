"""Raw gateway events: valid ones parse, every malformed one becomes a dead letter with
its reason and source position, and no dead letter carries a clear PAN."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from flowgate.common.pan_scan import find_pans
from flowgate.fraud.events import DeadLetter, ReceivedEvent, SourceRecord, parse_record, split_records
from flowgate.fraud.pan import synthetic_pan

PRODUCED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def event(**overrides) -> dict:
    body = {
        "schema_version": 1, "transaction_id": str(uuid.uuid4()),
        "event_time": "2026-11-29T11:59:59.500Z", "amount": "123.45", "currency": "EUR",
        "merchant_id": "m_000123", "mcc": "5411", "merchant_country": "DE", "card_country": "DE",
        "channel": "ecom", "pan_envelope": "v1.QUJDREVGR0g",
    }
    return body | overrides


def record(value: bytes | None, offset: int = 7) -> SourceRecord:
    return SourceRecord(value=value, partition=1, offset=offset, timestamp=PRODUCED)


def test_a_valid_event_parses_with_exact_money():
    parsed = parse_record(record(json.dumps(event()).encode()))
    assert isinstance(parsed, ReceivedEvent)
    assert parsed.event.amount == Decimal("123.45")
    assert parsed.event.event_time.tzinfo is not None


@pytest.mark.parametrize(("overrides", "field"), [
    ({"amount": "-1.00"}, "amount"),
    ({"amount": "1.001"}, "amount"),
    ({"currency": "EUX"}, "currency"),
    ({"mcc": "54x1"}, "mcc"),
    ({"channel": "fax"}, "channel"),
    ({"event_time": "2026-11-29T11:59:59"}, "event_time"),  # no time zone: ambiguous
    ({"transaction_id": "not-a-uuid"}, "transaction_id"),
    ({"pan_envelope": "4111111111111111"}, "pan_envelope"),
    ({"schema_version": 2}, "schema_version"),
])
def test_each_malformed_field_is_named_in_the_dead_letter(overrides, field):
    parsed = parse_record(record(json.dumps(event(**overrides)).encode()))
    assert isinstance(parsed, DeadLetter)
    assert parsed.reason.startswith(field), parsed.reason
    assert (parsed.partition, parsed.offset) == (1, 7)


def test_missing_field_not_json_and_empty_are_dead_letters():
    missing = event()
    del missing["merchant_id"]
    reasons = [parse_record(record(v)).reason for v in (json.dumps(missing).encode(), b"{oops", None)]
    assert reasons[0].startswith("merchant_id")
    assert "json" in reasons[1].lower()
    assert "empty" in reasons[2]


def test_a_dead_letter_never_carries_a_clear_pan():
    pan = synthetic_pan(random.Random(5))
    leaked = json.dumps(event(pan_envelope=pan, card_number=pan)).encode()
    letter = parse_record(record(leaked))
    assert isinstance(letter, DeadLetter)
    assert find_pans(letter.to_json()) == []
    assert pan[-4:] in letter.payload  # masked, still recognisable for debugging


def test_split_counts_reconcile():
    values = [json.dumps(event()).encode(), b"nope", json.dumps(event(amount="0")).encode(), json.dumps(event()).encode()]
    events, dead = split_records(record(v, offset=i) for i, v in enumerate(values))
    assert (len(events), len(dead)) == (2, 2)
    assert sorted(d.offset for d in dead) == [1, 2]

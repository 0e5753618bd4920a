"""The gateway simulator: deterministic, the fraud mix it promises, events that follow the
contract and hold the PAN only sealed, a truth file without card data, paced sends."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from flowgate.fraud import envelope
from flowgate.fraud import gateway as gw
from flowgate.fraud.events import SourceRecord, parse_record
from flowgate.fraud.pan import luhn_valid

START = datetime(2026, 11, 29, 5, 42, 41, 123456, tzinfo=UTC)


def run(count=5_000, fraud_rate=0.02, seed=3, rate=1000.0):
    return list(gw.simulate(count, fraud_rate, seed, START, rate))


@pytest.fixture(scope="module")
def transactions():
    return run(20_000, 0.03, seed=3, rate=200.0)


@pytest.fixture
def keys(tmp_path):
    private_path, public_path = envelope.generate_keypair(tmp_path / "keys")
    return envelope.load_private_key(private_path), envelope.load_public_key(public_path)


def test_same_seed_same_payments_other_seed_other_payments():
    first, again = run(), run()
    assert first == again
    assert [t.pan for t in first] == [t.pan for t in again]
    other = run(seed=4)
    assert {t.transaction_id for t in other}.isdisjoint(t.transaction_id for t in first)


def test_event_times_are_spaced_by_the_rate_on_millisecond_boundaries():
    txs = run(2_000, rate=500.0)
    assert txs[0].event_time == START.replace(microsecond=123000)
    assert all(t.event_time.microsecond % 1000 == 0 for t in txs)
    assert txs[-1].event_time - txs[0].event_time == timedelta(seconds=1999 / 500)
    assert all(a.event_time <= b.event_time for a, b in zip(txs, txs[1:]))


def test_the_fraud_mix(transactions):
    fraud = [t for t in transactions if t.label]
    assert len(fraud) / len(transactions) == pytest.approx(0.03, abs=0.004)
    patterns = Counter(t.pattern for t in fraud)
    assert set(patterns) == set(gw.FRAUD_PATTERNS)
    assert all(patterns[p] > 40 for p in gw.FRAUD_PATTERNS), patterns
    assert {t.pattern for t in transactions if not t.label} == set(gw.LEGIT_PATTERNS)
    assert all((t.label == 1) == (t.pattern in gw.FRAUD_PATTERNS) for t in transactions)
    assert sum(1 for t in transactions if t.pattern == "travel") > 0.03 * len(transactions)
    assert len(set(t.transaction_id for t in transactions)) == len(transactions)
    assert run(3_000, fraud_rate=0.0) and not any(t.label for t in run(3_000, fraud_rate=0.0))


def _episodes(transactions, pattern):
    by_card: dict[str, list] = {}
    for t in transactions:
        if t.pattern == pattern:
            by_card.setdefault(t.card.card_id, []).append(t)
    return by_card


def test_card_testing_is_a_burst_of_tiny_online_payments_at_many_merchants(transactions):
    bursts = [b for b in _episodes(transactions, "card_testing").values() if len(b) >= 8]
    assert bursts
    for burst in bursts:
        assert all(t.channel == "ecom" and t.amount < Decimal("3") for t in burst)
        assert len({t.merchant_id for t in burst}) >= len(burst) // 2
        assert burst[-1].event_time - burst[0].event_time < timedelta(seconds=25 * 3 + 5)


def test_velocity_and_cash_out_patterns(transactions):
    velocity = [t for t in transactions if t.pattern == "velocity"]
    assert min(t.amount for t in velocity) >= Decimal("150")
    geo = [t for t in transactions if t.pattern == "geo_mismatch"]
    assert all(t.merchant_country != t.card_country and t.currency != t.card.currency for t in geo)
    risky = [t for t in transactions if t.pattern == "high_risk_mcc"]
    assert all(t.mcc in {"7995", "6051", "4829", "6540"} for t in risky)
    travel = [t for t in transactions if t.pattern == "travel"]
    assert all(t.merchant_country != t.card_country for t in travel)


def test_cards_have_valid_synthetic_pans_and_a_home(transactions):
    cards = {t.card.card_id: t.card for t in transactions}
    assert len(cards) > 1000
    assert all(luhn_valid(c.pan) for c in list(cards.values())[:200])
    assert all(c.currency for c in cards.values())
    assert "pan" not in repr(transactions[0]) and transactions[0].pan not in repr(transactions[0])


def test_the_event_follows_the_contract_and_holds_the_pan_only_sealed(transactions, keys):
    private_key, public_key = keys
    for tx in transactions[:300]:
        data = gw.to_event_bytes(tx, public_key)
        assert tx.pan.encode() not in data
        # No Luhn-valid run of 12-19 digits anywhere in the bytes (ids, amounts, envelope).
        for run_ in re.findall(rb"\d{12,19}", data):
            assert not luhn_valid(run_.decode()), run_
        event = json.loads(data)
        assert set(event) == {"schema_version", "transaction_id", "event_time", "amount", "currency", "merchant_id",
                              "mcc", "merchant_country", "card_country", "channel", "pan_envelope"}
        assert event["amount"] == f"{tx.amount:.2f}" and re.fullmatch(r"\d+\.\d\d", event["amount"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["event_time"])
        assert envelope.open_envelope(private_key, event["pan_envelope"]) == tx.pan
        # The stream's own parser accepts it as is.
        parsed = parse_record(SourceRecord(value=data, partition=0, offset=0, timestamp=START))
        assert str(parsed.event.transaction_id) == tx.transaction_id
        assert parsed.event.event_time == tx.event_time and parsed.event.amount == tx.amount


def test_pan_scanner_finds_nothing_in_the_events(transactions, keys):
    from flowgate.common.pan_scan import find_pans

    _, public_key = keys
    blob = b"\n".join(gw.to_event_bytes(t, public_key) for t in transactions[:500])
    assert find_pans(blob) == []
    assert find_pans(transactions[0].pan.encode())  # the scanner does see a clear PAN


def test_truth_file_lists_labels_and_patterns_without_card_data(transactions, tmp_path):
    path = gw.write_truth(tmp_path / "truth.csv", transactions)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["transaction_id", "label", "pattern"]
    assert len(rows) == len(transactions)
    assert rows[5] == {"transaction_id": transactions[5].transaction_id, "label": str(transactions[5].label),
                       "pattern": transactions[5].pattern}
    text = path.read_text()
    assert not any(t.pan in text for t in transactions[:2000])


class FakeProducer:
    def __init__(self):
        self.sent: list[tuple[str, bytes]] = []
        self.pending = []
        self.full_once = True

    def produce(self, topic, value, key, on_delivery):
        if self.full_once and len(self.sent) == 10:
            self.full_once = False
            raise BufferError("queue full")
        self.sent.append((key, value))
        self.pending.append(on_delivery)

    def poll(self, _timeout=0):
        for callback in self.pending:
            callback(None, None)
        self.pending.clear()
        return 0

    def flush(self, _timeout=None):
        self.poll()
        return 0


def test_paced_send_sends_everything_in_order_at_the_rate():
    events = [(f"k{i}", f"v{i}".encode()) for i in range(300)]
    producer = FakeProducer()
    progress = []
    report = gw.paced_send(producer, "payments.events", events, 1000.0,
                           on_progress=lambda sent, elapsed: progress.append(sent))
    assert producer.sent == events  # a full queue was retried, nothing lost or reordered
    assert report.produced == 300 and report.failed == 0
    assert report.send_seconds >= 299 / 1000  # never ahead of the schedule
    assert report.achieved_rate <= 1000.0 * 1.001


def test_paced_send_catches_up_when_behind():
    # A fake clock that jumps 0.5 s after the first send: 500 messages are due at once.
    events = [(f"k{i}", b"v") for i in range(1_000)]
    ticks = iter([0.0, 0.0] + [0.5] * 10 + [1.0] * 10_000)
    producer = FakeProducer()
    report = gw.paced_send(producer, "t", events, 1000.0, clock=lambda: next(ticks), sleep=lambda s: None)
    assert len(producer.sent) == 1_000
    assert report.max_behind_s == pytest.approx(0.5, abs=0.01)

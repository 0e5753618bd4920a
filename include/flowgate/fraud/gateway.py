"""The payment-gateway simulator: labelled card payments, sealed and paced onto Kafka.

One generator feeds both the model's training data and the load on ``payments.events``,
so the model learns the traffic the stream will see. Legitimate traffic has the shapes
that make fraud detection hard (tiny transit fares, shopping sessions of several
payments, travel abroad in another currency, the odd casino); the planted fraud has a
``pattern`` label, so a run can be scored per pattern:

- ``card_testing``   a burst of tiny card-not-present payments at many merchants within seconds;
- ``velocity``       several large payments on one card within minutes;
- ``geo_mismatch``   large ATM/online payments in a far country, in a foreign currency;
- ``high_risk_mcc``  large payments where fraud cashes out (gambling, quasi-cash, transfers).

Deterministic for a seed (transaction ids included), so a test, a training run and a
demo replay the same payments. Event times are spaced exactly by the rate, on
millisecond boundaries (the event's precision). A clear PAN exists only in memory, on
the :class:`SimulatedTransaction`; on the wire it is sealed for the tokenizer.
"""

from __future__ import annotations

import bisect
import csv
import heapq
import itertools
import json
import math
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd

from flowgate.fraud.features import HOME_CURRENCY

SCHEMA_VERSION = 1
LEGIT_PATTERNS = ("legit", "travel")
FRAUD_PATTERNS = ("card_testing", "velocity", "geo_mismatch", "high_risk_mcc")
# How often a card pays, on average: the card pool grows with the rate, so the per-card
# velocity the model learns at one rate holds at another.
CARD_MEAN_GAP_S = 1200.0
MIN_CARDS = 200

_CARD_COUNTRIES = {"DE": 25, "FR": 12, "NL": 8, "ES": 6, "IT": 6, "GB": 15, "US": 18, "CH": 10}
_TRAVEL_COUNTRIES = {"FR": 14, "ES": 14, "IT": 12, "DE": 8, "GB": 10, "US": 10, "CH": 6, "NL": 6, "AT": 6,
                     "PT": 5, "GR": 4, "TR": 2, "TH": 2, "MX": 1}
# Card countries by weight, as a list a hash can index.
_CARD_COUNTRY_LIST = tuple(c for c, w in _CARD_COUNTRIES.items() for _ in range(w))
_FAR_COUNTRIES = ("BR", "NG", "RU", "ID", "VN", "PH", "MX", "TR", "TH")
# mcc -> (weight among legit payments, median amount, spread (lognormal sigma), channels with weights)
_LEGIT_MCC: dict[str, tuple[int, float, float, dict[str, int]]] = {
    "5411": (20, 38.0, 0.7, {"pos": 9, "ecom": 1}),   # grocery
    "5812": (10, 32.0, 0.6, {"pos": 1}),              # restaurants
    "5814": (10, 9.0, 0.5, {"pos": 1}),               # fast food, coffee
    "4111": (7, 3.5, 0.4, {"pos": 1}),                # transit fares: tiny, frequent
    "5541": (7, 55.0, 0.4, {"pos": 1}),               # fuel
    "5999": (8, 35.0, 0.9, {"pos": 1, "ecom": 1}),    # misc retail
    "5311": (6, 60.0, 0.8, {"pos": 2, "ecom": 1}),    # department stores
    "5732": (3, 160.0, 0.9, {"pos": 1, "ecom": 1}),   # electronics
    "5815": (6, 8.0, 0.7, {"ecom": 1}),               # digital goods: tiny, online
    "5734": (3, 25.0, 0.8, {"ecom": 1}),              # software
    "4121": (4, 20.0, 0.5, {"pos": 1, "ecom": 1}),    # taxis, ride hailing
    "7011": (2, 180.0, 0.6, {"pos": 1, "ecom": 1}),   # hotels
    "6011": (5, 120.0, 0.0, {"atm": 1}),              # ATM cash
    "7995": (1, 30.0, 0.8, {"ecom": 1}),              # a legitimate bet now and then
    "4829": (1, 150.0, 0.8, {"ecom": 1}),             # a legitimate money transfer
}
# Episodes per pattern: a card-testing burst is many payments, a cash-out a few.
_ATTACK_WEIGHTS = {"card_testing": 2, "velocity": 3, "geo_mismatch": 5, "high_risk_mcc": 5}
_LEGIT_MCC_WEIGHTS = {mcc: weight for mcc, (weight, *_rest) in _LEGIT_MCC.items()}
_TESTING_MCC = ("5815", "5734", "5999", "8398")  # digital goods, software, misc, charities
_VELOCITY_MCC = ("5732", "5944", "5311")           # electronics, jewelry, department stores
_CASHOUT_MCC = ("7995", "6051", "4829", "6540")    # gambling, quasi-cash, transfers, stored value
_MERCHANTS_PER_COUNTRY_MCC = 40
_CENT = Decimal("0.01")
_ATM_NOTES = (20, 40, 50, 60, 80, 100, 150, 200, 250, 300, 400)


@dataclass(frozen=True)
class Card:
    card_id: str  # stands in for the tokenizer's token where no tokenizer runs (training)
    country: str
    currency: str
    pan_seed: str = field(repr=False)

    @cached_property
    def pan(self) -> str:
        """The card number, made on first use (training never needs one); memory only."""
        from flowgate.fraud.pan import synthetic_pan

        return synthetic_pan(random.Random(self.pan_seed))


@dataclass(frozen=True)
class SimulatedTransaction:
    transaction_id: str
    event_time: datetime
    amount: Decimal
    currency: str
    merchant_id: str
    mcc: str
    merchant_country: str
    channel: str
    card: Card = field(repr=False)
    label: int  # 1 = fraud
    pattern: str

    @property
    def card_country(self) -> str:
        return self.card.country

    @property
    def pan(self) -> str:
        return self.card.pan


@dataclass(slots=True)
class _Planned:
    """A payment the simulator has decided will happen on a card (a session, an attack)."""

    card_index: int
    pattern: str
    merchant_country: str
    mcc: str
    channel: str
    amount: Decimal
    currency: str
    merchant_id: str | None = None


def simulate(count: int, fraud_rate: float, seed: int, start: datetime,
             rate_per_s: float) -> Iterator[SimulatedTransaction]:
    """``count`` payments, one every ``1 / rate_per_s`` seconds from ``start``, about
    ``fraud_rate`` of them planted fraud. Same arguments, same payments."""
    if count < 0:
        raise ValueError("count must be >= 0")
    if not 0.0 <= fraud_rate < 0.5:
        raise ValueError("fraud_rate must be in [0, 0.5)")
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be > 0")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return _Simulator(fraud_rate, seed, rate_per_s).run(count, _to_millisecond(start.astimezone(UTC)))


class _Simulator:
    def __init__(self, fraud_rate: float, seed: int, rate_per_s: float):
        self.fraud_rate, self.seed, self.rate = fraud_rate, seed, rate_per_s
        self.rng = random.Random(seed)
        self.card_count = max(MIN_CARDS, round(rate_per_s * CARD_MEAN_GAP_S))
        self._cards: dict[int, Card] = {}

    # --- the schedule ------------------------------------------------------------
    def run(self, count: int, start: datetime) -> Iterator[SimulatedTransaction]:
        planned: list[tuple[float, int, _Planned]] = []  # (due second, sequence, payment)
        sequence, fraud_emitted, fraud_pending = 0, 0, 0
        end_s = (count - 1) / self.rate
        for i in range(count):
            now_s = math.floor(i * 1000 / self.rate) / 1000
            event_time = start + timedelta(milliseconds=round(now_s * 1000))
            if planned and planned[0][0] <= now_s:
                _, _, payment = heapq.heappop(planned)
                fraud_pending -= payment.pattern in FRAUD_PATTERNS
            else:
                # Fraud episodes start whenever the fraud so far (emitted + already
                # planned) falls behind the rate: the mix holds for any count.
                attack = fraud_emitted + fraud_pending < self.fraud_rate * (i + 1)
                payment, *later = self._attack() if attack else self._legit()
                for offset, follow in later:
                    if now_s + offset > end_s:
                        continue  # after the run's end: planning it would only skew the mix
                    sequence += 1
                    heapq.heappush(planned, (now_s + offset, sequence, follow))
                    fraud_pending += follow.pattern in FRAUD_PATTERNS
            fraud_emitted += payment.pattern in FRAUD_PATTERNS
            yield self._transaction(payment, event_time)

    def _transaction(self, p: _Planned, event_time: datetime) -> SimulatedTransaction:
        rng = self.rng
        merchant = p.merchant_id or self._merchant_id(p.merchant_country, p.mcc)
        return SimulatedTransaction(
            transaction_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            event_time=event_time, amount=p.amount, currency=p.currency, merchant_id=merchant,
            mcc=p.mcc, merchant_country=p.merchant_country, channel=p.channel,
            card=self.card(p.card_index), label=int(p.pattern in FRAUD_PATTERNS), pattern=p.pattern)

    # --- cards and merchants -----------------------------------------------------
    def card(self, index: int) -> Card:
        """Card ``index`` of the pool, created on first use from its own seeded generator
        (a card is the same card whichever payment meets it first)."""
        card = self._cards.get(index)
        if card is None:
            country = _CARD_COUNTRY_LIST[_mix64(self.seed, index) % len(_CARD_COUNTRY_LIST)]
            card = Card(card_id=f"card_{index:07d}", country=country, currency=HOME_CURRENCY[country],
                        pan_seed=f"flowgate-card/{self.seed}/{index}")
            self._cards[index] = card
        return card

    def _merchant_id(self, country: str, mcc: str) -> str:
        return f"m_{country}_{mcc}_{self.rng.randrange(_MERCHANTS_PER_COUNTRY_MCC):03d}"

    def _any_card(self) -> int:
        return self.rng.randrange(self.card_count)

    # --- legitimate traffic ------------------------------------------------------
    def _legit(self) -> list:
        """One payment, sometimes the first of a shopping session on the same card."""
        rng = self.rng
        index = self._any_card()
        card = self.card(index)
        kind = rng.random()
        if kind < 0.90:
            country, pattern = card.country, "legit"
        elif kind < 0.96:  # travelling: paying abroad, in the local currency
            country = _weighted(rng, _TRAVEL_COUNTRIES) if rng.random() < 0.9 else rng.choice(_FAR_COUNTRIES)
            pattern = "travel" if country != card.country else "legit"
        else:  # a foreign web shop
            country, pattern = rng.choice(("US", "GB", "DE", "NL", "IE", "CH")), "legit"
            if country == card.country:
                country = "US" if card.country != "US" else "GB"
        first = self._legit_payment(index, card, country, pattern, web_shop=kind >= 0.96)
        session = [first]
        if rng.random() < 0.12:  # a shopping trip or an evening out: more payments, minutes apart
            offset = 0.0
            for _ in range(rng.randint(1, 3)):
                offset += rng.uniform(20.0, 600.0)
                session.append((offset, self._legit_payment(index, card, country, pattern, web_shop=False)))
        return session

    def _legit_payment(self, index: int, card: Card, country: str, pattern: str, *, web_shop: bool) -> _Planned:
        rng = self.rng
        mcc = _weighted(rng, _LEGIT_MCC_WEIGHTS)
        _, median, sigma, channels = _LEGIT_MCC[mcc]
        channel = "ecom" if web_shop else _weighted(rng, channels)
        if channel == "atm":
            amount = Decimal(rng.choice(_ATM_NOTES)).quantize(_CENT)
        else:
            amount = _money(rng.lognormvariate(math.log(median), sigma))
        currency = HOME_CURRENCY.get(country, "USD")
        if web_shop and rng.random() < 0.5:
            currency = card.currency  # many web shops charge in the buyer's currency
        return _Planned(index, pattern, country, mcc, channel, amount, currency)

    # --- planted fraud -----------------------------------------------------------
    def _attack(self) -> list:
        """The first payment of a fraud episode, plus the rest as (seconds later, payment)."""
        rng = self.rng
        pattern = _weighted(rng, _ATTACK_WEIGHTS)
        index = self._any_card()
        card = self.card(index)
        payments: list[tuple[float, _Planned]] = []
        offset = 0.0
        if pattern == "card_testing":
            for _ in range(rng.randint(8, 25)):
                country = card.country if rng.random() < 0.4 else rng.choice(("US", "GB", "NL", "IE", "CY", "MT"))
                amount = Decimal("1.00") if rng.random() < 0.3 else _money(rng.uniform(0.5, 2.99))
                payments.append((offset, _Planned(index, pattern, country, rng.choice(_TESTING_MCC), "ecom",
                                                  amount, HOME_CURRENCY.get(country, "EUR"))))
                offset += rng.uniform(0.3, 3.0)
        elif pattern == "velocity":
            for _ in range(rng.randint(4, 9)):
                amount = _money(min(3000.0, max(150.0, rng.lognormvariate(math.log(600), 0.5))))
                payments.append((offset, _Planned(index, pattern, card.country, rng.choice(_VELOCITY_MCC),
                                                  rng.choice(("pos", "ecom")), amount, card.currency)))
                offset += rng.uniform(10.0, 90.0)
        elif pattern == "geo_mismatch":
            country = rng.choice(_FAR_COUNTRIES)
            for _ in range(rng.randint(1, 3)):
                channel = "atm" if rng.random() < 0.4 else "ecom"
                amount = (Decimal(rng.choice(_ATM_NOTES[5:]) * 2).quantize(_CENT) if channel == "atm"
                          else _money(rng.lognormvariate(math.log(400), 0.6)))
                local = HOME_CURRENCY.get(country, "USD")
                currency = "USD" if rng.random() < 0.4 and card.currency != "USD" else local
                payments.append((offset, _Planned(index, pattern, country, "6011" if channel == "atm" else "5999",
                                                  channel, amount, currency)))
                offset += rng.uniform(30.0, 300.0)
        else:  # high_risk_mcc
            for _ in range(rng.randint(1, 3)):
                country = card.country if rng.random() < 0.5 else rng.choice(("MT", "CY", "GB", "US"))
                amount = _money(rng.lognormvariate(math.log(500), 0.6))
                payments.append((offset, _Planned(index, pattern, country, rng.choice(_CASHOUT_MCC), "ecom",
                                                  amount, HOME_CURRENCY.get(country, "EUR"))))
                offset += rng.uniform(60.0, 600.0)
        return [payments[0][1], *payments[1:]]


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    """A key of ``weights``, drawn with those weights (cumulative weights cached per dict)."""
    table = _TABLES.get(id(weights))
    if table is None:
        table = _TABLES[id(weights)] = (tuple(weights), tuple(itertools.accumulate(weights.values())), weights)
    keys, cumulative, _ = table
    return keys[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


_TABLES: dict[int, tuple[tuple[str, ...], tuple[int, ...], dict]] = {}  # the dict is kept: its id stays its own


def _mix64(seed: int, index: int) -> int:
    """splitmix64 of (seed, index): a card's attributes without a generator of its own."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _money(value: float) -> Decimal:
    return max(Decimal("0.01"), Decimal(f"{value:.2f}"))


def _to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- what leaves the simulator -----------------------------------------------------

def transactions_frame(transactions: Iterable[SimulatedTransaction]) -> pd.DataFrame:
    """The feature functions' batch frame (token = the card id), plus ``label`` and ``pattern``."""
    records = [{
        "transaction_id": t.transaction_id, "token": t.card.card_id, "event_time": t.event_time,
        "amount": float(t.amount), "currency": t.currency, "mcc": t.mcc, "merchant_id": t.merchant_id,
        "merchant_country": t.merchant_country, "card_country": t.card.country, "channel": t.channel,
        "label": t.label, "pattern": t.pattern,
    } for t in transactions]
    frame = pd.DataFrame.from_records(records, columns=[
        "transaction_id", "token", "event_time", "amount", "currency", "mcc", "merchant_id",
        "merchant_country", "card_country", "channel", "label", "pattern"])
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    return frame


def event_time_text(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the contract shows."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sealing_key_path() -> Path | None:
    """The tokenizer's public key the gateway seals PANs with: $FLOWGATE_TOKENIZER_PUBLIC_KEY
    (Docker, production), else the local stack's; None if neither exists yet."""
    if os.environ.get("FLOWGATE_TOKENIZER_PUBLIC_KEY"):
        return Path(os.environ["FLOWGATE_TOKENIZER_PUBLIC_KEY"])
    from flowgate.devstack.config import StackConfig
    from flowgate.devstack.tokenizer import tokenizer_public_key

    candidate = tokenizer_public_key(StackConfig.from_env())
    return candidate if candidate.exists() else None


def to_event_bytes(tx: SimulatedTransaction, public_key) -> bytes:
    """The JSON event on ``payments.events`` (see ``flowgate.fraud``): the PAN only sealed."""
    from flowgate.fraud.envelope import seal_pan

    return json.dumps({
        "schema_version": SCHEMA_VERSION, "transaction_id": tx.transaction_id,
        "event_time": event_time_text(tx.event_time), "amount": f"{tx.amount:.2f}",
        "currency": tx.currency, "merchant_id": tx.merchant_id, "mcc": tx.mcc,
        "merchant_country": tx.merchant_country, "card_country": tx.card.country, "channel": tx.channel,
        "pan_envelope": seal_pan(public_key, tx.card.pan),
    }, separators=(",", ":")).encode()


def write_truth(path: Path | str, transactions: Iterable[SimulatedTransaction]) -> Path:
    """transaction_id,label,pattern per payment (no card data), to score a run's decisions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("transaction_id", "label", "pattern"))
        for t in transactions:
            writer.writerow((t.transaction_id, t.label, t.pattern))
    tmp.replace(path)
    return path


# --- paced produce -----------------------------------------------------------------

@dataclass(frozen=True)
class GatewayReport:
    produced: int          # acknowledged by the broker (acks=all)
    failed: int            # delivery errors
    seconds: float         # first send to the last acknowledgement
    send_seconds: float    # first send to the last send (what the pacing controls)
    target_rate: float
    achieved_rate: float   # sent per second over send_seconds
    max_behind_s: float    # the furthest the sends fell behind the schedule

    def summary(self) -> str:
        return (f"produced {self.produced} ({self.failed} failed) in {self.seconds:.2f}s; "
                f"sent at {self.achieved_rate:,.0f} msg/s (target {self.target_rate:,.0f}); "
                f"max {self.max_behind_s * 1000:.1f} ms behind schedule")


PRODUCER_SETTINGS = {
    # A payment waits at most 2 ms for a batch: the stream's latency budget is end to end.
    "linger.ms": 2,
    "acks": "all",
    # No duplicates or reordering from the producer's own retries.
    "enable.idempotence": True,
    "queue.buffering.max.messages": 1_000_000,
}

_SLICE_S = 0.001  # sleep at most this long at a time: pacing stays within a millisecond or two


def produce(bootstrap: str, topic: str, events: Sequence[tuple[str, bytes]], rate_per_s: float, *,
            on_progress: Callable[[int, float], None] | None = None) -> GatewayReport:
    """Send ``events`` (key, value) at ``rate_per_s``: message i is due at i / rate after
    the first; a send that falls behind catches up at once; the end flushes and waits
    for every acknowledgement. Produce time is the Kafka message timestamp (CreateTime)."""
    return paced_send(kafka_producer(bootstrap), topic, events, rate_per_s, on_progress=on_progress)


def kafka_producer(bootstrap: str):
    """The gateway's producer. A real gateway keeps one for its life: a new one spends its
    first few hundred ms connecting and getting its idempotent producer id."""
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS})


def paced_send(producer, topic: str, events: Sequence[tuple[str, bytes]], rate_per_s: float, *,
               on_progress: Callable[[int, float], None] | None = None,
               clock: Callable[[], float] = time.perf_counter,
               sleep: Callable[[float], None] = time.sleep) -> GatewayReport:
    """The pacing loop of :func:`produce`, for any object with confluent-kafka's
    ``produce``/``poll``/``flush`` (tests pass a fake)."""
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be > 0")
    outcome = {"ok": 0, "failed": 0}

    def delivered(err, _msg) -> None:
        outcome["failed" if err is not None else "ok"] += 1

    interval = 1.0 / rate_per_s
    started = clock()
    next_progress, max_behind, sent = started + 1.0, 0.0, 0
    total = len(events)
    while sent < total:
        now = clock()
        due = started + sent * interval
        if now < due:
            sleep(min(_SLICE_S, due - now))
            continue
        max_behind = max(max_behind, now - due)
        # Everything due by now goes out in one go: behind schedule, we catch up.
        while sent < total and started + sent * interval <= now:
            key, value = events[sent]
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
            except BufferError:  # the local queue is full: let librdkafka drain, then retry
                producer.poll(0.005)
                continue
            sent += 1
        producer.poll(0)
        if on_progress is not None and now >= next_progress:
            on_progress(sent, now - started)
            next_progress += 1.0
    sent_at = clock()
    remaining = producer.flush(30)
    finished = clock()
    send_seconds = max(sent_at - started, 1e-9)
    return GatewayReport(
        produced=outcome["ok"], failed=outcome["failed"] + remaining, seconds=finished - started,
        send_seconds=send_seconds, target_rate=rate_per_s,
        achieved_rate=((total - 1) / send_seconds) if total > 1 else float(total), max_behind_s=max_behind)

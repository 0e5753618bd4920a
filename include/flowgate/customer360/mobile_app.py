"""The simulated mobile app: what three releases of it send to Kafka ``mobile.events``.

Each event says what a device did: ``event_id``, ``device_id``, ``user_id`` (null until
the user logs in), ``event_name``, ``ts``, ``app_version``, ``properties``. Everything is a
function of the seed, so a test or the bench can say exactly what it produced.

The schema drifts the way real app releases drift it (what the warehouse must survive):

- **1.0.0** sends the schema the warehouse expects (``expectations/mobile_events.yaml``).
- **2.0.0** adds a field (``network``) and renames one (``properties.screen`` ->
  ``properties.screen_name``).
- **3.0.0** sends ``user_id`` as a number instead of a string, and adds a nested object
  (``device``: os, os_version, model).

**Identity, shared with the CRM simulator.** User ``n`` (0-based) has ``user_id``
``str(100000 + n)`` (:func:`user_id_of`) and signs in with :func:`user_email`: the email of
customer ``n`` of the CRM's seed (``customers.customer``), which the CRM simulator seeds
as contact ``n``, typed the way the user types it (a phone keyboard capitalises, people
paste a trailing space), so that stitching must normalise before it hashes. Device
``d < users`` is user ``d``'s phone; the others never log in. Half of a user's sessions
start logged in; the rest log in part-way (anonymous events first, then a ``login`` event
carrying ``properties.email``, then the user id). The ingest keys that email
(``identity``) before it stores the event.

**At least once.** A phone resends what it did not see acknowledged: :func:`resent`
picks events to produce a second time, with the same ``event_id``, to prove the dedupe.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flowgate.customer360.customers import DEFAULT_SEED, customer
from flowgate.customer360.identity import normalised_email

TOPIC = "mobile.events"
APP_VERSIONS = ("1.0.0", "2.0.0", "3.0.0")
USER_ID_BASE = 100_000

SCREENS = ("home", "catalog", "product", "cart", "checkout", "search")
PRODUCTS = tuple(f"sku-{i:04d}" for i in range(1, 41))
PHONES = (("android", "15", "Pixel 9"), ("android", "14", "Galaxy S24"), ("ios", "18.1", "iPhone 16"),
          ("ios", "17.6", "iPhone 13"))


def user_id_of(n: int) -> str:
    """The backend's id of user ``n`` (the CRM simulator uses the same numbering)."""
    return str(USER_ID_BASE + n)


def user_email(n: int, crm_seed: int = DEFAULT_SEED) -> str:
    """The email user ``n`` types at login: CRM contact ``n``'s address, its case and
    whitespace varying by ``n % 4``."""
    address = normalised_email(customer(crm_seed, n, companies=1).email)  # companies: not used by the email
    styles = (address, address.capitalize(), f"  {address.upper()}", f"{address} \t")
    return styles[n % 4]


@dataclass(frozen=True)
class Happening:
    """One thing a device did, independent of how a release spells it."""

    event_id: str
    device_id: str
    user_index: int | None  # None: not logged in (yet)
    event_name: str
    ts: datetime
    screen: str
    extra: dict = field(default_factory=dict)  # the event's own properties
    network: str = "wifi"
    phone: tuple[str, str, str] = PHONES[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MobileApp:
    """The app on ``devices`` phones, ``users`` of which belong to a user who can log in.

    ``events(version, sessions, start)`` is deterministic in (seed, version, session
    number, start): the same call gives the same events, ids included.
    """

    def __init__(self, seed: int = 0, *, users: int = 40, devices: int = 60, crm_seed: int = DEFAULT_SEED) -> None:
        if users > devices:
            raise ValueError("every user has a phone: users <= devices")
        self.seed, self.users, self.devices, self.crm_seed = seed, users, devices, crm_seed
        rng = random.Random(f"mobile-app:{seed}:devices")
        self.device_ids = [_uuid(rng) for _ in range(devices)]
        self.phones = [PHONES[rng.randrange(len(PHONES))] for _ in range(devices)]

    def owner_of(self, device: int) -> int | None:
        return device if device < self.users else None

    def events(self, app_version: str, sessions: int, start: datetime) -> list[dict]:
        """``sessions`` sessions of release ``app_version`` from ``start``, as sent (JSON objects)."""
        return [render(h, app_version) for h in self.happenings(app_version, sessions, start)]

    def happenings(self, app_version: str, sessions: int, start: datetime) -> list[Happening]:
        out: list[Happening] = []
        for number in range(sessions):
            rng = random.Random(f"mobile-app:{self.seed}:{app_version}:{start.isoformat()}:{number}")
            session_start = start + timedelta(seconds=number * 37 + rng.randrange(30))
            out.extend(self._session(rng, session_start))
        return sorted(out, key=lambda h: (h.ts, h.event_id))

    def _session(self, rng: random.Random, at: datetime) -> Iterator[Happening]:
        device = rng.randrange(self.devices)
        owner = self.owner_of(device)
        length = rng.randint(4, 10)
        # Where in the session the user logs in: 0 = already logged in; None = never.
        login_at = None if owner is None else rng.choice((0, rng.randint(1, length - 2)))
        network = rng.choice(("wifi", "cellular"))
        names = ["app_open", *(rng.choice(("screen_view", "product_view", "search", "add_to_cart"))
                               for _ in range(length - 2)), rng.choice(("purchase", "app_background"))]
        if login_at:
            names.insert(login_at, "login")
        logged_in = login_at == 0
        for name in names:
            at += timedelta(milliseconds=rng.randint(800, 40_000))
            logged_in = logged_in or name == "login"
            yield Happening(
                event_id=_uuid(rng), device_id=self.device_ids[device],
                user_index=owner if logged_in else None, event_name=name, ts=at,
                screen=_screen_of(name, rng), extra=_properties_of(name, owner, rng, self.crm_seed),
                network=network, phone=self.phones[device])


def _screen_of(name: str, rng: random.Random) -> str:
    return {"login": "login", "purchase": "checkout", "add_to_cart": "product", "product_view": "product",
            "search": "search"}.get(name) or rng.choice(SCREENS)


def _properties_of(name: str, owner: int | None, rng: random.Random, crm_seed: int) -> dict:
    if name == "login":
        return {"method": "email", "email": user_email(owner, crm_seed)}
    if name in ("product_view", "add_to_cart"):
        props = {"product_id": rng.choice(PRODUCTS)}
        return props | ({"quantity": rng.randint(1, 3)} if name == "add_to_cart" else {})
    if name == "search":
        return {"query": rng.choice(("shoes", "coat", "gift card", "socks"))}
    if name == "purchase":
        # Money as a decimal string, never a float (the platform's rule, and what the app sends).
        return {"order_total": f"{rng.randint(500, 25_000) / 100:.2f}", "currency": "EUR"}
    return {}


def render(h: Happening, app_version: str) -> dict:
    """The JSON object release ``app_version`` sends for ``h`` (the drift lives here)."""
    major = _major(app_version)
    user_id: str | int | None = None if h.user_index is None else user_id_of(h.user_index)
    screen_key = "screen" if major < 2 else "screen_name"  # 2.0.0 renamed it
    event = {
        "event_id": h.event_id, "device_id": h.device_id,
        # 3.0.0's SDK sends the backend's numeric id as a number.
        "user_id": int(user_id) if major >= 3 and user_id is not None else user_id,
        "event_name": h.event_name, "ts": _iso(h.ts), "app_version": app_version,
        "properties": {screen_key: h.screen, **h.extra},
    }
    if major >= 2:
        event["network"] = h.network  # a new field
    if major >= 3:
        os_name, os_version, model = h.phone
        event["device"] = {"os": os_name, "os_version": os_version, "model": model}  # a new nested object
    return event


def _major(app_version: str) -> int:
    if app_version not in APP_VERSIONS:
        raise ValueError(f"unknown app version {app_version!r}: one of {APP_VERSIONS}")
    return int(app_version.split(".")[0])


def resent(events: Sequence[dict], fraction: float, seed: int = 0) -> list[dict]:
    """The events a phone sends again (at least once): a deterministic ``fraction`` of them."""
    rng = random.Random(f"mobile-app:resend:{seed}")
    return [e for e in events if rng.random() < fraction]


# ----------------------------------------------------------------------------- to Kafka


@dataclass(frozen=True)
class Produced:
    messages: int
    topic: str


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def produce(events: Sequence[dict], bootstrap: str, topic: str = TOPIC, *, timeout_s: float = 60) -> Produced:
    """Send ``events`` to ``topic``, keyed by device (a device's events stay in order),
    and wait until Kafka acknowledged every one; raises if any was not."""
    from confluent_kafka import Producer

    failures: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         # Uncompressed, as the platform's other producers: the PAN scan reads
                         # Kafka's segments, and compressed bytes cut digit runs into false hits.
                         "linger.ms": 5})

    def delivered(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    for event in events:
        while True:
            try:
                producer.produce(topic, key=str(event.get("device_id", "")).encode(), value=encode(event),
                                 on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(timeout_s)
    if left or failures:
        raise RuntimeError(f"{left} event(s) not delivered to {topic} within {timeout_s} s, "
                           f"{len(failures)} failed (first: {failures[:1]})")
    return Produced(len(events), topic)

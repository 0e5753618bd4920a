"""What an event from the app is, against what the warehouse expects: drift and typed columns.

Pure functions (no I/O beyond reading the schema file), so every rule is unit-tested:

- :func:`read_event` turns one Kafka message into an :class:`Examined` event (or a
  :class:`Rejected` one when it is not a JSON object with an ``event_id``: nothing can
  dedupe it, so it is kept aside whole rather than dropped);
- :func:`typed_envelope` fills the typed columns. A value of the wrong type (3.0.0's
  numeric ``user_id``) or a timestamp that does not parse never fails the load: the
  column stays null, the value stays in the payload, and a :class:`TypeConflict` says so;
- :func:`field_drift` lists how the event departs from the declared schema: a field it
  does not declare (``new_field``), a type it does not allow (``type_change``), a required
  field that is absent (``missing_field``; a rename shows as one of these plus a new field);
- :func:`summarise_drift` folds a batch's drift into one :class:`DriftRow` per field and
  change, with when and in which app version it was first seen and the types observed.

The expected schema is ``expectations/mobile_events.yaml``: a reviewed control beside the
other gates' suites and contracts (an auditor finds every gate's rules in one folder, and
the Docker image ships that folder), not code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from flowgate.customer360.identity import keyed_login, pseudonymised_text

JsonType = Literal["string", "number", "boolean", "object", "array", "null"]
NEW_FIELD, TYPE_CHANGE, MISSING_FIELD = "new_field", "type_change", "missing_field"
ABSENT = "absent"  # the observed "type" of a required field that is not there
NOT_A_TIMESTAMP = "string (not date-time)"  # a string where a timestamp was expected


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["string", "number", "boolean", "object", "array"]
    required: bool = False
    nullable: bool = False
    format: Literal["date-time"] | None = None
    column: str | None = None  # the typed column of raw_mobile.events it fills

    def allows(self, json_type: str) -> bool:
        return json_type == self.type or (json_type == "null" and self.nullable)


class ExpectedSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int
    describes_app_version: str
    topic: str
    owner: str  # the team told about drift
    fields: dict[str, FieldSpec]
    sha256: str = ""

    def typed_fields(self) -> dict[str, FieldSpec]:
        return {path: spec for path, spec in self.fields.items() if spec.column}


def schema_file() -> Path:
    """``expectations/mobile_events.yaml`` of the repo (``FLOWGATE_EXPECTATIONS_DIR`` moves it)."""
    base = os.environ.get("FLOWGATE_EXPECTATIONS_DIR")
    root = Path(base) if base else Path(__file__).resolve().parents[3] / "expectations"
    return root / "mobile_events.yaml"


def parse_schema(text: bytes) -> ExpectedSchema:
    return ExpectedSchema(**yaml.safe_load(text), sha256=hashlib.sha256(text).hexdigest())


@cache
def load_schema(path: Path | None = None) -> ExpectedSchema:
    return parse_schema((path or schema_file()).read_bytes())


# ----------------------------------------------------------------------------- one event


def json_type(value: object) -> JsonType:
    """The JSON type of a value json.loads gave (a bool is not a number in JSON)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def field_types(payload: Mapping, prefix: str = "") -> dict[str, JsonType]:
    """Every field path of ``payload`` (dotted; objects are listed and entered, arrays
    are leaves) and its JSON type."""
    found: dict[str, JsonType] = {}
    for key, value in payload.items():
        path = f"{prefix}{key}"
        found[path] = json_type(value)
        if isinstance(value, dict):
            found.update(field_types(value, f"{path}."))
    return found


def value_at(payload: Mapping, path: str) -> object:
    node: object = payload
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


@dataclass(frozen=True)
class FieldDrift:
    path: str
    change: str  # NEW_FIELD, TYPE_CHANGE or MISSING_FIELD
    observed_type: str  # a JSON type, or ABSENT
    expected_type: str | None = None


def field_drift(payload: Mapping, schema: ExpectedSchema) -> list[FieldDrift]:
    """How ``payload`` departs from ``schema``; empty when it matches."""
    observed = field_types(payload)
    drift = []
    for path, typ in observed.items():
        spec = schema.fields.get(path)
        if spec is None:
            drift.append(FieldDrift(path, NEW_FIELD, typ))
        elif not spec.allows(typ):
            drift.append(FieldDrift(path, TYPE_CHANGE, typ, spec.type))
    drift += [FieldDrift(path, MISSING_FIELD, ABSENT, spec.type)
              for path, spec in schema.fields.items() if spec.required and path not in observed]
    return drift


@dataclass(frozen=True)
class TypeConflict:
    """A value that does not fit its typed column: the column is null, the value stays raw."""

    path: str
    column: str
    expected_type: str
    observed_type: str
    reason: str


def typed_envelope(payload: Mapping, schema: ExpectedSchema) -> tuple[dict[str, object], list[TypeConflict]]:
    """The typed columns' values (null where absent or not fitting) and the conflicts."""
    columns: dict[str, object] = {}
    conflicts: list[TypeConflict] = []
    for path, spec in schema.typed_fields().items():
        value = value_at(payload, path)
        columns[spec.column], conflict = _typed_value(path, spec, value)
        if conflict:
            conflicts.append(conflict)
    return columns, conflicts


def _typed_value(path: str, spec: FieldSpec, value: object) -> tuple[object, TypeConflict | None]:
    if value is None:
        return None, None  # absent or null: nothing is lost by a null column (drift lists it if not allowed)
    observed = json_type(value)
    if observed != spec.type:
        return None, TypeConflict(path, spec.column, spec.type, observed, f"a {observed}, not a {spec.type}")
    if spec.format == "date-time":
        moment = parse_timestamp(value)
        if moment is None:
            return None, TypeConflict(path, spec.column, "date-time", NOT_A_TIMESTAMP,
                                      "not an ISO-8601 timestamp with a UTC offset")
        return moment, None
    return value, None


def parse_timestamp(text: str) -> datetime | None:
    """An aware datetime, or None: a timestamp without an offset is ambiguous, not UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# ----------------------------------------------------------------------------- a message


@dataclass(frozen=True)
class KafkaCoordinates:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Examined:
    """An event with an id: its payload as received, typed columns, conflicts and drift."""

    at: KafkaCoordinates
    event_id: str
    payload_text: str  # the message as received: stored whole
    columns: dict[str, object]
    conflicts: list[TypeConflict]
    drift: list[FieldDrift]

    @property
    def app_version(self) -> str:
        """The release that sent it, as text even when it sent something odd (for drift rows)."""
        value = self.columns.get("app_version")
        return value if isinstance(value, str) else "unknown"

    @property
    def seen_at(self) -> datetime | None:
        """When it happened: its own timestamp, else when Kafka took it."""
        return self.columns.get("event_ts") or self.at.timestamp


@dataclass(frozen=True)
class Rejected:
    at: KafkaCoordinates
    raw: str
    reason: str


def read_event(raw: str | None, at: KafkaCoordinates, schema: ExpectedSchema, identity_key: str) -> Examined | Rejected:
    """One message: examined, or rejected with the reason when it cannot be deduplicated.

    Stored as received but for one thing: the login's email becomes its keyed hash
    (``identity``), here, before anything is written — raw_mobile never holds an address,
    not even in a rejected message's text."""
    if raw is None:
        return Rejected(at, "", "empty message")
    try:
        payload = json.loads(raw)
    except ValueError as err:
        return Rejected(at, pseudonymised_text(raw, identity_key), f"not JSON: {err}")
    if not isinstance(payload, dict):
        return Rejected(at, pseudonymised_text(raw, identity_key), f"not a JSON object but a {json_type(payload)}")
    raw = _without_emails(payload, raw, identity_key)
    event_id = payload.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip():
        return Rejected(at, raw, "no event_id (a non-empty string): it cannot be deduplicated")
    if "\\u0000" in raw:
        return Rejected(at, raw, "contains \\u0000, which PostgreSQL's jsonb cannot store")
    columns, conflicts = typed_envelope(payload, schema)
    return Examined(at, event_id, raw, columns, conflicts, with_conflicts(field_drift(payload, schema), conflicts))


def _without_emails(payload: dict, raw: str, identity_key: str) -> str:
    """Key the login email in ``payload`` (in place) and return the text to store: the
    message as received when it held no ``properties.email``, else the keyed payload."""
    properties = payload.get("properties")
    if not isinstance(properties, dict) or "email" not in properties:
        return raw
    payload["properties"] = keyed_login(properties, identity_key)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def with_conflicts(drift: list[FieldDrift], conflicts: Iterable[TypeConflict]) -> list[FieldDrift]:
    """Drift plus a type change for every conflict it does not list yet (a timestamp that
    does not parse is of the declared JSON type, but no less a change)."""
    listed = {(d.path, d.change) for d in drift}
    return drift + [FieldDrift(c.path, TYPE_CHANGE, c.observed_type, c.expected_type)
                    for c in conflicts if (c.path, TYPE_CHANGE) not in listed]


# ----------------------------------------------------------------------------- a batch


@dataclass
class DriftRow:
    """One field's departure from the schema, as ``raw_mobile.schema_drift`` lists it."""

    path: str
    change: str
    expected_type: str | None
    observed_types: set[str] = field(default_factory=set)
    first_seen: datetime | None = None
    app_version: str = ""  # of the event that showed it first
    last_seen: datetime | None = None
    events: int = 0


def summarise_drift(events: Iterable[Examined]) -> list[DriftRow]:
    """One row per (field, change) over ``events``: first seen (event time, the earliest
    wins whatever the order), its app version, last seen, the types observed, how many."""
    rows: dict[tuple[str, str], DriftRow] = {}
    for event in events:
        seen = event.seen_at
        for drift in event.drift:
            row = rows.setdefault((drift.path, drift.change), DriftRow(drift.path, drift.change, drift.expected_type))
            row.observed_types.add(drift.observed_type)
            row.events += 1
            if seen is not None and (row.first_seen is None or seen < row.first_seen):
                row.first_seen, row.app_version = seen, event.app_version
            if seen is not None and (row.last_seen is None or seen > row.last_seen):
                row.last_seen = seen
            row.app_version = row.app_version or event.app_version
    return sorted(rows.values(), key=lambda r: (r.path, r.change))

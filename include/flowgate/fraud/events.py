"""Raw gateway events in, validated payment events or dead letters out.

A malformed event must never stop the stream, and must never be lost: it leaves as a
dead letter that names the reason and where it came from (topic partition and offset;
the original stays on ``payments.events`` for its retention). A dead letter carries a
redacted copy of the payload: a misbehaving gateway could have put a clear PAN anywhere
in it, and the dead-letter topic is storage too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from flowgate.common.currencies import ISO_4217
from flowgate.common.pan_scan import redact_pans

# Dead letters keep enough of the payload to debug it, not a copy of any size.
MAX_DEAD_LETTER_PAYLOAD = 2048
# Anything larger than this is not one payment event.
MAX_EVENT_BYTES = 16 * 1024


def _iso_4217(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 currency")
    return code


class PaymentEvent(BaseModel):
    """One authorisation request from the gateway, as the contract in ``fraud/__init__``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1]
    transaction_id: UUID
    event_time: AwareDatetime
    amount: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
    currency: Annotated[str, AfterValidator(_iso_4217)]
    merchant_id: Annotated[str, Field(min_length=1, max_length=64)]
    mcc: Annotated[str, Field(pattern=r"^\d{4}$")]
    merchant_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    card_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    channel: Literal["ecom", "pos", "atm"]
    pan_envelope: Annotated[str, Field(pattern=r"^v1\.[A-Za-z0-9_-]+=*$", max_length=512)]


@dataclass(frozen=True)
class SourceRecord:
    """One Kafka record as the stream hands it over."""

    value: bytes | None
    partition: int
    offset: int
    timestamp: datetime  # the gateway's produce time (CreateTime)


@dataclass(frozen=True)
class ReceivedEvent:
    event: PaymentEvent
    source: SourceRecord


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    partition: int
    offset: int
    payload: str  # redacted and truncated
    transaction_id: str | None = None

    def to_json(self) -> bytes:
        return json.dumps({
            "reason": self.reason, "source_topic_partition": self.partition,
            "source_offset": self.offset, "transaction_id": self.transaction_id,
            "payload": self.payload,
        }).encode()


def parse_record(record: SourceRecord) -> ReceivedEvent | DeadLetter:
    if record.value is None:
        return dead_letter(record, "empty message (no value)")
    if len(record.value) > MAX_EVENT_BYTES:
        return dead_letter(record, f"message of {len(record.value)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        return ReceivedEvent(PaymentEvent.model_validate_json(record.value), record)
    except ValidationError as error:
        return dead_letter(record, describe(error))


def split_records(records: Iterable[SourceRecord]) -> tuple[list[ReceivedEvent], list[DeadLetter]]:
    events, dead = [], []
    for record in records:
        parsed = parse_record(record)
        (events if isinstance(parsed, ReceivedEvent) else dead).append(parsed)
    return events, dead


def describe(error: ValidationError) -> str:
    """The validation errors as one line: field and message, never the offending value."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{field}: {item['msg']}")
    return "; ".join(parts)


def dead_letter(record: SourceRecord, reason: str, transaction_id: str | None = None) -> DeadLetter:
    text = "" if record.value is None else record.value[:MAX_DEAD_LETTER_PAYLOAD].decode("utf-8", "replace")
    return DeadLetter(reason, record.partition, record.offset, redact_pans(text), transaction_id)

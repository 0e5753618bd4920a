"""One application log line: a JSON object in the OpenTelemetry log data model.

The field names are the data model's (https://opentelemetry.io/docs/specs/otel/logs/data-model/),
flat and snake_case as the model names them, not OTLP/JSON's camelCase wire form:

    {"timestamp": 1767225600000000000, "observed_timestamp": ..., "severity_text": "ERROR",
     "severity_number": 17, "body": "...", "resource": {"service.name": "ledger",
     "host.name": "ledger-1", "deployment.environment": "local"},
     "attributes": {"http.route": "/v1/entries", "duration_ms": 12.5, "exception.type": ...,
     "log.record.uid": "..."}, "trace_id": "<32 hex>", "span_id": "<16 hex>"}

Times are integers in ns since the epoch (``time_unix_nano``): a JSON number holds them
exactly as a 64-bit integer, which Spark (LongType) and OpenSearch (long) read as is.
``log.record.uid`` (an OTel semantic-convention attribute) names each line, so a test or
a bench can follow one line through Kafka, the lake and the index.

:class:`LogRecord` validates a line (tests, and whoever parses lines later);
:class:`RecordTemplate` writes them on the generator's hot path, where building and
encoding a dict per line would cost more than the whole 50,000 lines/s budget allows.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

# The data model's SeverityNumber of each short name (the first of its range of four).
SEVERITY_NUMBER = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
SeverityText = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]

SERVICE_NAME, HOST_NAME, ENVIRONMENT = "service.name", "host.name", "deployment.environment"
UID, INCIDENT_ID = "log.record.uid", "incident.id"

AttributeValue = StrictStr | StrictBool | StrictInt | StrictFloat


class Resource(BaseModel):
    """Who wrote the line: the OTel resource attributes every line carries."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    service_name: Annotated[str, Field(alias=SERVICE_NAME, min_length=1)]
    host_name: Annotated[str, Field(alias=HOST_NAME, min_length=1)]
    deployment_environment: Annotated[str, Field(alias=ENVIRONMENT, min_length=1)]


class LogRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp: Annotated[int, Field(gt=0)]
    observed_timestamp: Annotated[int, Field(gt=0)]
    severity_text: SeverityText
    severity_number: Annotated[int, Field(ge=1, le=24)]
    body: str
    resource: Resource
    attributes: dict[str, AttributeValue]
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]

    @model_validator(mode="after")
    def _number_in_the_text_range(self) -> LogRecord:
        # The model gives each short name a range of four numbers (INFO = 9..12).
        first = SEVERITY_NUMBER[self.severity_text]
        if not first <= self.severity_number < first + 4:
            raise ValueError(f"severity_number {self.severity_number} is not in {self.severity_text}'s range")
        return self


def parse_line(line: bytes | str) -> LogRecord:
    """A line as a validated record; raises pydantic's ValidationError if it is not one."""
    return LogRecord.model_validate_json(line)


_encoder = msgspec.json.Encoder()


def encode(record: dict) -> bytes:
    """One record as one compact JSON line (no newline). msgspec: C-speed, already pinned."""
    return _encoder.encode(record)


class RecordTemplate:
    """Everything about a line that is fixed for one (service, host, severity, route, body),
    pre-encoded once; :meth:`render` fills in what changes from line to line.

    Only numbers and hex digits are spliced in (plus the uid and incident id, which the
    generator makes from safe characters), so the output is always valid JSON.
    """

    __slots__ = ("_format",)

    def __init__(self, *, severity: str, body: str, resource: dict[str, str], attributes: dict[str, object]):
        fixed = _encoder.encode({
            "severity_text": severity, "severity_number": SEVERITY_NUMBER[severity], "body": body,
            "resource": resource, "attributes": attributes,
        })
        # fixed is {"severity_text":...,"attributes":{...}}: open it after the attributes
        # so the per-line attributes follow, and escape % for the formatting below.
        head = fixed[1:-2].replace(b"%", b"%%")
        separator = b"," if attributes else b""
        self._format = (b'{"timestamp":%d,"observed_timestamp":%d,' + head + separator
                        + b'"duration_ms":%.1f,"' + UID.encode() + b'":"%s"%s},"trace_id":"%s","span_id":"%s"}')

    def render(self, timestamp: int, observed: int, duration_ms: float, uid: bytes, trace_id: bytes, span_id: bytes,
               incident_id: bytes = b"") -> bytes:
        """``trace_id`` and ``span_id`` as lowercase hex (32 and 16 digits)."""
        incident = b',"incident.id":"' + incident_id + b'"' if incident_id else b""
        return self._format % (timestamp, observed, duration_ms, uid, incident, trace_id, span_id)

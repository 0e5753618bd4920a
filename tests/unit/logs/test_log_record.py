"""The log line is the OpenTelemetry log data model, and the fast template writes exactly
what encoding the same record as a dict would."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from flowgate.logs.record import SEVERITY_NUMBER, RecordTemplate, encode, parse_line

RESOURCE = {"service.name": "ledger", "host.name": "ledger-1", "deployment.environment": "local"}


def _record(**changes) -> dict:
    record = {
        "timestamp": 1_767_225_600_000_000_000, "observed_timestamp": 1_767_225_600_001_000_000,
        "severity_text": "ERROR", "severity_number": 17, "body": "java.lang.OutOfMemoryError: Java heap space",
        "resource": dict(RESOURCE),
        "attributes": {"http.route": "/v1/entries", "duration_ms": 12.5, "exception.type": "java.lang.OutOfMemoryError"},
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
    }
    record.update(changes)
    return record


def test_severity_numbers_are_the_otel_ones():
    assert SEVERITY_NUMBER == {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


def test_a_record_in_the_data_model_parses():
    record = parse_line(encode(_record()))
    assert record.resource.service_name == "ledger" and record.severity_number == 17
    assert record.attributes["exception.type"] == "java.lang.OutOfMemoryError"


@pytest.mark.parametrize("changes", [
    {"trace_id": "0af7651916cd43dd8448eb211c80319"},         # 31 hex digits
    {"span_id": "B7AD6B7169203331"},                          # upper case is not the model's hex
    {"severity_number": 9},                                   # INFO's number on an ERROR
    {"severity_text": "CRITICAL"},
    {"timestamp": "2026-01-01T00:00:00Z"},                    # ns since the epoch, not a string
    {"resource": {"service.name": "ledger"}},                 # host and environment missing
    {"extra_field": 1},
])
def test_what_is_not_the_model_is_refused(changes):
    with pytest.raises(ValidationError):
        parse_line(encode(_record(**changes)))


def test_the_template_writes_the_same_json_as_encoding_the_record():
    template = RecordTemplate(severity="ERROR", body='50% of "quotes" \\ and ünïcode', resource=RESOURCE,
                              attributes={"http.route": "/v1/entries", "exception.type": "X"})
    line = template.render(1_767_225_600_000_000_000, 1_767_225_600_000_000_123, 12.34, b"7-42",
                           b"0af7651916cd43dd8448eb211c80319c", b"b7ad6b7169203331", b"burst-1")
    assert json.loads(line) == {
        "timestamp": 1_767_225_600_000_000_000, "observed_timestamp": 1_767_225_600_000_000_123,
        "severity_text": "ERROR", "severity_number": 17, "body": '50% of "quotes" \\ and ünïcode',
        "resource": RESOURCE,
        "attributes": {"http.route": "/v1/entries", "exception.type": "X", "duration_ms": 12.3,
                       "log.record.uid": "7-42", "incident.id": "burst-1"},
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
    }
    parse_line(line)


def test_a_template_without_attributes_or_incident_is_still_valid_json():
    template = RecordTemplate(severity="INFO", body="ok", resource=RESOURCE, attributes={})
    line = template.render(1, 2, 0.0, b"u", b"0" * 32, b"1" * 16)
    assert json.loads(line)["attributes"] == {"duration_ms": 0.0, "log.record.uid": "u"}

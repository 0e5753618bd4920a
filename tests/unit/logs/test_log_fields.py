"""The fields the rules read, parsed on the driver (flowgate.logs.fields): what a line gives,
and what a line that is no log record gives (nothing: the job counts it malformed)."""

from __future__ import annotations

import json
import re
import time

import pyarrow as pa

from flowgate.logs.fields import FIELD_COLUMNS, RAW_COLUMNS, append_fields, match_column, parse_fields
from flowgate.logs.generator import MALFORMED_KINDS, LoadMix, LogGenerator
from flowgate.logs.record import encode
from flowgate.logs.rules import load_rules

PATTERNS = [(r.name, re.compile(r.regex)) for r in load_rules().of_kind("pattern")]
OOM = match_column("OutOfMemory")


def one(line: bytes) -> dict:
    return {name: column[0] for name, column in parse_fields([line], PATTERNS).items()}


def record(**fields) -> bytes:
    return encode({"timestamp": 1_767_225_600_000_000_000, "severity_number": 17, "body": "boom",
                   "resource": {"service.name": "ledger"}, "attributes": {}, **fields})


def test_a_generated_line_gives_its_service_severity_time_and_exception():
    gen = LogGenerator(LoadMix(rate_per_s=100.0), seed=7, start_ns=time.time_ns())
    for line in gen.lines(200):
        want = json.loads(line)
        got = one(line)
        assert (got["service"], got["severity_number"], got["event_ts_ns"], got["exception_type"]) == (
            want["resource"]["service.name"], want["severity_number"], want["timestamp"],
            want["attributes"].get("exception.type"))


def test_pattern_rules_search_the_body():
    assert one(record(body="java.lang.OutOfMemoryError: Java heap space"))[OOM] is True
    assert one(record(body="all good"))[OOM] is False
    assert one(record(body=42))[OOM] is False  # not a string: no match, and the rest still parses
    assert one(record(body=42))["service"] == "ledger"


def test_attribute_and_resource_values_of_any_scalar_read_as_their_text():
    got = one(record(resource={"service.name": 7}, attributes={"exception.type": 1.5}))
    assert (got["service"], got["exception_type"]) == ("7", "1.5")


def test_a_line_that_is_no_log_record_has_no_fields():
    gen = LogGenerator(LoadMix(rate_per_s=100.0), seed=7, start_ns=time.time_ns())
    bad = {kind: gen.malformed(kind) for kind in MALFORMED_KINDS}
    for line in (bad["not_json"], b'["an", "array"]', b"null", b"", record(severity_number="17"),
                 record(timestamp=1.5e18), record()[:-1]):
        got = one(line)
        assert got["service"] is None or got["severity_number"] is None or got["event_ts_ns"] is None, line
        assert got[OOM] is False
    assert one(bad["missing_fields"])["severity_number"] is None
    assert one(bad["huge_body"])["severity_number"] == 17  # a 1 MiB body still parses


def test_invalid_utf8_is_read_with_replacement_characters_as_spark_read_it():
    line = record(body="x").replace(b'"x"', b'"bad \xff\xfe OutOfMemoryError"')
    got = one(line)
    assert (got["service"], got["severity_number"], got[OOM]) == ("ledger", 17, True)


def test_the_parsed_fields_are_appended_as_typed_columns_to_the_raw_batch():
    lines = [record(), b"not json"]
    raw = pa.table({"partition": pa.array([0, 1], pa.int32()), "offset": [5, 6], "kafka_ts_ms": [1, 2],
                    "value": pa.array(lines, pa.binary())})
    table = append_fields(raw, parse_fields(lines, PATTERNS))
    assert table.column_names == [*RAW_COLUMNS, *FIELD_COLUMNS, OOM]
    assert table.schema.field("severity_number").type == pa.int32()
    assert table["service"].to_pylist() == ["ledger", None]

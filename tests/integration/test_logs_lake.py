"""The raw log lake on the stack's S3 API: replayed batches rewrite the same objects,
malformed lines keep their exact bytes, compaction loses and doubles nothing (even when
interrupted), and retention deletes what is past the TTL by an injected clock."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from flowgate.devstack.services import s3_client
from flowgate.logs import lake

DAY = date(2026, 3, 2)  # far in the past of every real batch: the tests own these hours
HOUR_MS = int(datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def s3(running_stack):
    client = s3_client(running_stack)
    yield client
    for key in lake.list_keys(client, f"{lake.PREFIX}/dt={DAY.isoformat()}/"):
        client.delete_object(Bucket=lake.LAKE_BUCKET, Key=key)


def lines(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"body": f"line {i}", "resource": {"service.name": "api"}}).encode()
            for i in range(start, start + n)]


def a_batch(batch_id: int, values: list[bytes], partition: int = 0, first_offset: int = 0, at_ms: int = HOUR_MS):
    n = len(values)
    return lake.batch_objects(batch_id, [partition] * n, list(range(first_offset, first_offset + n)),
                              [at_ms + i for i in range(n)], values)


def stored(s3, prefix: str) -> Counter:
    return Counter(lake.original_line(line) for key in lake.list_keys(s3, prefix)
                   for line in lake.read_lines(s3, key) if not key.endswith(lake.MANIFEST))


def test_a_replayed_batch_rewrites_the_same_objects(s3):
    values = lines(100)
    first = a_batch(7, values)
    lake.put_objects(s3, first)
    lake.put_objects(s3, a_batch(7, values))
    prefix = lake.hour_prefix(DAY, 10)
    assert lake.list_keys(s3, prefix) == [o.key for o in first] == [f"{prefix}b000000000007-p0-o0.jsonl.gz"]
    assert stored(s3, prefix) == Counter(values)


def test_a_batch_spanning_an_hour_and_two_partitions_makes_one_object_each(s3):
    objects = lake.batch_objects(3, [0, 1, 0, 1], [10, 20, 11, 21],
                                 [HOUR_MS - 1, HOUR_MS, HOUR_MS + 5, HOUR_MS - 2], lines(4))
    assert sorted(o.key.split("/app_logs/")[1] for o in objects) == [
        "dt=2026-03-02/hour=09/b000000000003-p0-o10.jsonl.gz", "dt=2026-03-02/hour=09/b000000000003-p1-o21.jsonl.gz",
        "dt=2026-03-02/hour=10/b000000000003-p0-o11.jsonl.gz", "dt=2026-03-02/hour=10/b000000000003-p1-o20.jsonl.gz"]


def test_malformed_lines_are_kept_with_their_exact_bytes(s3):
    bad = [b"not json at all", b'{"missing": "fields"}', b"\xff\xfe invalid utf-8 \xc3(",
           b'{"body": "two\nlines"}', json.dumps({"body": "x" * 1_000_000}).encode()]
    objects = a_batch(1, bad)
    assert sum(o.malformed for o in objects) == 2  # the invalid UTF-8 and the raw newline: in envelopes
    lake.put_objects(s3, objects)
    prefix = lake.hour_prefix(DAY, 10)
    assert stored(s3, prefix) == Counter(bad)
    raw = gzip.decompress(s3.get_object(Bucket=lake.LAKE_BUCKET, Key=objects[0].key)["Body"].read())
    assert raw.count(b"\n") == len(bad), "one line per record, whatever it held"
    raw.decode("utf-8")  # every object is valid UTF-8 text


def test_compaction_keeps_every_line_once_in_few_objects(s3):
    expected = Counter()
    for batch in range(20):
        values = lines(50, start=batch * 50)
        expected.update(values)
        lake.put_objects(s3, a_batch(batch, values, partition=batch % 2, first_offset=batch * 50))
    prefix = lake.hour_prefix(DAY, 10)
    result = lake.compact_hour(s3, DAY, 10, target_bytes=2_000)
    keys = lake.list_keys(s3, prefix)
    assert result.inputs == 20 and result.lines == 1000 and 1 < result.outputs < 20
    assert all("/compacted-" in k for k in keys) and len(keys) == result.outputs
    assert stored(s3, prefix) == expected
    assert lake.compact_hour(s3, DAY, 10).inputs == 0, "compacted objects are not compacted again"


def test_an_interrupted_compaction_is_finished_without_doubling(s3):
    expected = Counter()
    for batch in range(3):
        values = lines(10, start=batch * 10)
        expected.update(values)
        lake.put_objects(s3, a_batch(batch, values, first_offset=batch * 10))
    prefix = lake.hour_prefix(DAY, 10)
    inputs = lake.list_keys(s3, prefix)
    lake.compact_hour(s3, DAY, 10)
    # as if the run had died after its manifest, before deleting: inputs back, manifest back
    outputs = lake.list_keys(s3, prefix)
    for key in inputs:
        s3.put_object(Bucket=lake.LAKE_BUCKET, Key=key, Body=a_batch(0, [b"x"])[0].body)
    s3.put_object(Bucket=lake.LAKE_BUCKET, Key=prefix + lake.MANIFEST,
                  Body=json.dumps({"inputs": inputs, "outputs": outputs, "lines": 30}).encode())
    lake.compact_hour(s3, DAY, 10)
    assert stored(s3, prefix) == expected


def test_closed_hours_wait_for_the_lateness(s3):
    lake.put_objects(s3, a_batch(1, lines(1)))
    end_of_hour = datetime(2026, 3, 2, 11, tzinfo=UTC)
    ours = lambda now: [h for h in lake.closed_hours(s3, now, timedelta(minutes=10)) if h[0] == DAY]  # noqa: E731
    assert ours(end_of_hour + timedelta(minutes=5)) == []
    assert ours(end_of_hour + timedelta(minutes=10)) == [(DAY, 10)]


def test_retention_deletes_what_is_past_the_ttl_by_the_injected_clock(s3):
    lake.put_objects(s3, a_batch(1, lines(1)))
    lake.put_objects(s3, a_batch(2, lines(1), at_ms=HOUR_MS + 86_400_000))  # the next day
    ours = lambda keys: [k for k in keys if "/dt=2026-03-0" in k]  # noqa: E731
    assert ours(lake.delete_expired(s3, 30, now=lambda: datetime(2026, 4, 1, tzinfo=UTC))) == []
    deleted = ours(lake.delete_expired(s3, 30, now=lambda: datetime(2026, 4, 2, 12, tzinfo=UTC)))
    assert deleted == [f"{lake.hour_prefix(DAY, 10)}b000000000001-p0-o0.jsonl.gz"]
    assert lake.list_keys(s3, lake.hour_prefix(DAY + timedelta(days=1), 10))


def test_the_lifecycle_rule_is_set_on_the_bucket(s3):
    lake.apply_lifecycle(s3, 30)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=lake.LAKE_BUCKET)["Rules"]
    assert [(r["ID"], r["Expiration"]["Days"], r["Filter"]["Prefix"]) for r in rules] == [
        ("app-logs-raw-ttl", 30, "raw/app_logs/")]


def test_the_retention_task_applies_every_ttl_by_its_clock(s3, running_stack, monkeypatch):
    from flowgate.devstack.env import connections
    from flowgate.logs import housekeeping, search
    from flowgate.logs.ttl import load_ttl

    monkeypatch.setenv("AIRFLOW_CONN_OPENSEARCH", json.dumps(connections(running_stack)["opensearch"]))
    client = search.SearchClient.from_connection()
    old_index = search.daily_index(DAY)
    client.bulk([search.Document(old_index, "x", {"timestamp_ms": 0, "severity_number": 17})], refresh=True)
    lake.put_objects(s3, a_batch(1, lines(3)))
    ttl = load_ttl()
    now = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=max(ttl.lake.days, ttl.opensearch.index_days) + 1)
    done = housekeeping.apply_retention(now, s3=s3, search_client=client)
    assert done["lake_objects_deleted"] >= 1 and old_index in done["indices_deleted"]
    assert not lake.list_keys(s3, lake.hour_prefix(DAY, 10)) and old_index not in client.indices()
    rules = s3.get_bucket_lifecycle_configuration(Bucket=lake.LAKE_BUCKET)["Rules"]
    assert rules[0]["Expiration"]["Days"] == ttl.lake.days


def test_the_compaction_task_compacts_only_closed_hours(s3):
    from flowgate.logs import housekeeping

    for batch in range(3):
        lake.put_objects(s3, a_batch(batch, lines(5, start=batch * 5), first_offset=batch * 5))
    done = [d for d in housekeeping.compact_closed_hours(datetime(2026, 3, 2, 11, 20, tzinfo=UTC), s3=s3)
            if d["prefix"] == lake.hour_prefix(DAY, 10)]
    assert done == [{"prefix": lake.hour_prefix(DAY, 10), "inputs": 3, "outputs": 1, "lines": 15}]

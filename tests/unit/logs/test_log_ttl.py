"""The TTLs load from the one file, are validated, and reach the app.logs topic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flowgate.devstack import kafka
from flowgate.logs.ttl import load_ttl

GOOD = """
lake: {days: 30}
opensearch: {index_days: 7}
kafka: {retention_ms: 259200000, retention_bytes: 4294967296}
forwarder: {buffer_bytes: 536870912}
"""


def test_the_project_file_loads_with_a_value_for_every_place_logs_live():
    ttl = load_ttl()
    assert ttl.lake.days > ttl.opensearch.index_days > 0  # the lake outlives the index it rehydrates
    assert ttl.kafka.retention_hours * 3_600_000 == ttl.kafka.retention_ms
    assert ttl.forwarder.buffer_bytes >= 1024 * 1024


def test_a_file_elsewhere_loads(tmp_path):
    path = tmp_path / "ttl.yaml"
    path.write_text(GOOD.replace("days: 30", "days: 90"))
    assert load_ttl(path).lake.days == 90


@pytest.mark.parametrize("bad", [
    GOOD.replace("days: 30", "dayz: 30"),                          # a misspelt key
    GOOD.replace("index_days: 7", "index_days: 0"),
    GOOD.replace("retention_ms: 259200000", "retention_ms: 259200001"),  # not whole hours
    GOOD.replace("buffer_bytes: 536870912", "buffer_bytes: 1000"),
    GOOD.replace("forwarder: {buffer_bytes: 536870912}", ""),        # a place without a TTL
])
def test_a_wrong_file_fails_to_load(tmp_path, bad):
    path = tmp_path / "ttl.yaml"
    path.write_text(bad)
    with pytest.raises(ValidationError):
        load_ttl(path)


def test_the_app_logs_topic_takes_its_retention_from_the_ttl_file():
    ttl = load_ttl().kafka
    (topic,) = [t for t in kafka.TOPICS if t.name == "app.logs"]
    config = topic.topic_config()
    assert config["retention.ms"] == str(ttl.retention_ms)
    assert config["retention.bytes"] == str(ttl.retention_bytes)
    assert topic.partitions == 2

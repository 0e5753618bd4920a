"""docker/fluent-bit/fluent-bit.conf agrees with the local forwarder and the TTL file:
the same topic, a filesystem buffer on every input, and the same buffer limit."""

from __future__ import annotations

from pathlib import Path

from flowgate.logs import MAX_MESSAGE_BYTES, TOPIC
from flowgate.logs.forwarder import PRODUCER_SETTINGS
from flowgate.logs.ttl import load_ttl

CONF = Path(__file__).resolve().parents[2] / "docker" / "fluent-bit" / "fluent-bit.conf"


def _sections() -> list[tuple[str, dict[str, str]]]:
    """The classic format: [SECTION] headers, then ``key value`` lines (keys are case-insensitive)."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in CONF.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1].upper(), {}))
            continue
        key, _, value = line.partition(" ")
        assert sections, f"{CONF.name}: {line!r} before any section"
        sections[-1][1][key.lower()] = value.strip()
    return sections


def _one(kind: str, name: str) -> dict[str, str]:
    (found,) = [s for k, s in _sections() if k == kind and s.get("name") == name]
    return found


def test_the_kafka_output_ships_raw_lines_to_app_logs():
    out = _one("OUTPUT", "kafka")
    assert out["brokers"] == "kafka:9092" and out["topics"] == TOPIC
    assert (out["format"], out["raw_log_key"]) == ("raw", "log")


def test_the_buffer_limit_mirrors_the_ttl_file_in_plain_bytes():
    # Fluent Bit reads "512M" as 512 * 10**6: only a plain number says the same as ttl.yaml.
    limit = _one("OUTPUT", "kafka")["storage.total_limit_size"]
    assert limit.isdigit() and int(limit) == load_ttl().forwarder.buffer_bytes


def test_every_input_buffers_on_disk_and_the_service_fsyncs_it():
    service = [s for k, s in _sections() if k == "SERVICE"][0]
    assert service["storage.path"] and service["storage.sync"] == "full"
    inputs = [s for k, s in _sections() if k == "INPUT"]
    assert inputs and all(s.get("storage.type") == "filesystem" for s in inputs)


def test_the_producer_settings_match_the_local_forwarder():
    out = _one("OUTPUT", "kafka")
    assert out["rdkafka.request.required.acks"] == "-1" and PRODUCER_SETTINGS["acks"] == "all"
    assert out["rdkafka.enable.idempotence"] == "true" and PRODUCER_SETTINGS["enable.idempotence"] is True
    assert out["rdkafka.compression.codec"] == PRODUCER_SETTINGS["compression.type"]
    assert int(out["rdkafka.message.max.bytes"]) == MAX_MESSAGE_BYTES == PRODUCER_SETTINGS["message.max.bytes"]

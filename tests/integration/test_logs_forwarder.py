"""The log forwarder against the stack's real Kafka broker: every line delivered and
counted; a 30 s Kafka outage buffered on disk and drained with nothing lost; a buffer
smaller than the outage drops its oldest chunks, counts them exactly, and never grows
past its limit.

Each test writes to a topic of its own (app.logs' configs, a fresh name), so what it
consumes is exactly what it sent. The two outage tests share one 30 s outage: two
forwarders, one with room for the whole outage and one without, run through it side by
side.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowgate.devstack import kafka, process, stack
from flowgate.logs import TOPIC
from flowgate.logs.forwarder import Forwarder, ForwarderStats
from flowgate.logs.generator import LoadMix, LogGenerator, pace

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
RATE = 1500.0          # lines/s per forwarder through the outage (~0.75 MB/s)
_UID = re.compile(rb'"log\.record\.uid":"([^"]+)"')


@pytest.fixture(scope="module")
def kafka_cfg(stack_config):
    """Only Kafka, as the benches start it; stopped afterwards if this module started it."""
    with stack.running(stack_config, {"kafka"}) as cfg:
        yield cfg


def new_topic(cfg) -> str:
    topic = kafka.topic_like(TOPIC, f"{TOPIC}.test-{uuid.uuid4().hex[:8]}")
    kafka.ensure_topics(cfg, [topic])
    return topic.name


def consume_all(cfg, topic: str, expected: int, idle_s: float = 5.0) -> list[bytes]:
    """Every value on ``topic``, read until ``expected`` arrived and then ``idle_s`` passes
    with nothing new (duplicates would show up in that time too)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers(cfg), "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[bytes] = []
    last_new, deadline = time.monotonic(), time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            for message in batch:
                assert message.error() is None, message.error()
                values.append(message.value())
            if batch:
                last_new = time.monotonic()
            elif len(values) >= expected and time.monotonic() - last_new > idle_s:
                break
    finally:
        consumer.close()
    return values


def uids(values) -> list[bytes]:
    return [_UID.search(v).group(1) for v in values]


def test_lines_are_delivered_counted_and_all_consumed(kafka_cfg, tmp_path):
    topic = new_topic(kafka_cfg)
    generator = LogGenerator(LoadMix(rate_per_s=RATE), seed=21)
    sent = generator.lines(20_000)
    # The lines the lake must keep raw go through untouched too.
    sent += [generator.malformed(kind) for kind in ("not_json", "missing_fields", "huge_body", "invalid_utf8")]
    with Forwarder(kafka.bootstrap_servers(kafka_cfg), tmp_path / "buffer", topic=topic) as forwarder:
        forwarder.send_many(sent)
        assert forwarder.flush(60)
        stats = forwarder.stats()
    assert (stats.received, stats.delivered, stats.dropped_lines, stats.pending_lines) == (len(sent), len(sent), 0, 0)
    assert stats.buffered_bytes == 0 and not list((tmp_path / "buffer").iterdir())
    received = consume_all(kafka_cfg, topic, len(sent), idle_s=2)
    assert sorted(received) == sorted(sent)  # byte for byte, the 1 MiB body and invalid UTF-8 included


def test_the_forwarder_process_ships_what_a_service_pipes_into_it(kafka_cfg, tmp_path):
    topic = new_topic(kafka_cfg)
    flowgate = str(Path(sys.executable).with_name("flowgate"))
    service = subprocess.Popen([flowgate, "logs", "generate", "--stdout", "--rate", "0", "--count", "5000",
                                "--seed", "8"], stdout=subprocess.PIPE)
    forwarder = subprocess.run([flowgate, "logs", "forward", "--topic", topic, "--buffer-dir", str(tmp_path / "buf"),
                                "--bootstrap", kafka.bootstrap_servers(kafka_cfg)],
                               stdin=service.stdout, capture_output=True, timeout=120)
    service.stdout.close()
    assert service.wait(30) == 0 and forwarder.returncode == 0, forwarder.stderr.decode()[-2000:]
    final = json.loads(forwarder.stderr.decode().strip().splitlines()[-1])
    assert (final["received"], final["delivered"], final["pending_lines"]) == (5000, 5000, 0)
    expected = {LogGenerator(LoadMix(), seed=8).uid(seq).encode() for seq in range(5000)}
    assert set(uids(consume_all(kafka_cfg, topic, 5000, idle_s=2))) == expected


@dataclass
class OutageRun:
    topic: str
    seqs_before: range     # the generator's lines sent before Kafka stopped,
    seqs_during: range     # from then until the forwarder delivered again,
    seqs_after: range      # and from then on
    stats: ForwarderStats
    max_disk_bytes: int    # sampled from the buffer directory every 20 ms
    max_chunks_during: int
    limit_bytes: int
    uid: callable


class _Feeder:
    """A service logging at RATE into a forwarder, with a disk-usage sampler beside it."""

    def __init__(self, cfg, buffer_dir, topic, limit_bytes, seed, **forwarder_args):
        self.forwarder = Forwarder(kafka.bootstrap_servers(cfg), buffer_dir, topic=topic, limit_bytes=limit_bytes,
                                   **forwarder_args)
        self.generator = LogGenerator(LoadMix(rate_per_s=RATE), seed=seed)
        self.max_disk = self.max_chunks = 0
        self.counting_chunks = False
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._feed, daemon=True),
                         threading.Thread(target=self._sample, daemon=True)]
        self.error: BaseException | None = None

    def start(self):
        for thread in self._threads:
            thread.start()

    def _feed(self):
        try:
            while not self._stop.is_set():
                pace(self.generator, self.forwarder.send_many, int(RATE / 10), RATE)  # 0.1 s at a time
        except BaseException as error:  # surfaced by the test: the forwarder must never raise
            self.error = error

    def _sample(self):
        while not self._stop.is_set():
            self.max_disk = max(self.max_disk, self.forwarder.buffer.disk_bytes())
            if self.counting_chunks:
                self.max_chunks = max(self.max_chunks, len(list(self.forwarder.buffer.directory.glob("*.chunk"))))
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.fixture(scope="module")
def outage(kafka_cfg, tmp_path_factory):
    """Two forwarders feeding through one real 30 s Kafka outage: ``roomy`` has room for
    all of it, ``tight`` a 1 MiB buffer of 64 KiB chunks (~2 s of lines)."""
    service = kafka.kafka_service(kafka_cfg)
    roomy = _Feeder(kafka_cfg, tmp_path_factory.mktemp("roomy"), new_topic(kafka_cfg), 256 * 1024 * 1024, seed=1)
    tight = _Feeder(kafka_cfg, tmp_path_factory.mktemp("tight"), new_topic(kafka_cfg), 1024 * 1024, seed=2,
                    chunk_bytes=64 * 1024, max_inflight_chunks=2)
    feeders = {"roomy": roomy, "tight": tight}
    marks = {}
    for feeder in feeders.values():
        feeder.start()
    try:
        time.sleep(3)
        marks["stop"] = {name: f.generator.seq for name, f in feeders.items()}
        for feeder in feeders.values():
            feeder.counting_chunks = True
        stopped_at = time.monotonic()
        assert process.stop(service), "the stack's Kafka was not running"
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        delivered = {name: f.forwarder.stats().delivered for name, f in feeders.items()}
        for feeder in feeders.values():
            feeder.counting_chunks = False
        process.start(service)
        # "Back" is when each forwarder delivers again (the broker up, the producer reconnected).
        marks["start"] = {}
        deadline = time.monotonic() + 60
        while len(marks["start"]) < len(feeders) and time.monotonic() < deadline:
            for name, feeder in feeders.items():
                if name not in marks["start"] and feeder.forwarder.stats().delivered > delivered[name]:
                    marks["start"][name] = feeder.generator.seq
            time.sleep(0.02)
        assert len(marks["start"]) == len(feeders), "a forwarder did not deliver within 60 s of Kafka's restart"
        time.sleep(3)
    finally:
        process.start(service)  # whatever happened, the stack's Kafka is left running
        for feeder in feeders.values():
            feeder.stop()
    runs = {}
    for name, feeder in feeders.items():
        assert feeder.error is None, f"{name}: the service's send failed: {feeder.error!r}"
        assert feeder.forwarder.flush(120), f"{name}: the backlog did not drain: {feeder.forwarder.stats()}"
        stats = feeder.forwarder.close()
        end = feeder.generator.seq
        runs[name] = OutageRun(
            topic=feeder.forwarder.topic, seqs_before=range(0, marks["stop"][name]),
            seqs_during=range(marks["stop"][name], marks["start"][name]), seqs_after=range(marks["start"][name], end),
            stats=stats, max_disk_bytes=feeder.max_disk, max_chunks_during=feeder.max_chunks,
            limit_bytes=feeder.forwarder.buffer.limit_bytes, uid=feeder.generator.uid)
    return runs


def test_a_kafka_outage_is_buffered_on_disk_then_drained_with_nothing_lost(outage, kafka_cfg):
    run = outage["roomy"]
    produced = len(run.seqs_before) + len(run.seqs_during) + len(run.seqs_after)
    assert len(run.seqs_during) >= RATE * OUTAGE_S * 0.9
    # The outage went to disk: dozens of chunk files waiting, not a few in flight.
    assert run.max_chunks_during > 10 and run.max_disk_bytes > 5 * 1024 * 1024
    stats = run.stats
    assert (stats.received, stats.delivered, stats.dropped_lines, stats.pending_lines) == (produced, produced, 0, 0)
    consumed = uids(consume_all(kafka_cfg, run.topic, produced))
    expected = {run.uid(seq).encode() for seq in range(produced)}
    assert set(consumed) == expected
    duplicates = len(consumed) - len(set(consumed))
    print(f"outage: {produced} lines, {len(run.seqs_during)} during the outage, "
          f"peak buffer {run.max_disk_bytes / 1e6:.1f} MB in {run.max_chunks_during} chunks, {duplicates} duplicates")


def test_a_buffer_smaller_than_the_outage_drops_its_oldest_chunks_counts_them_and_holds_its_limit(outage, kafka_cfg):
    run = outage["tight"]
    stats = run.stats
    produced = len(run.seqs_before) + len(run.seqs_during) + len(run.seqs_after)
    assert run.max_disk_bytes <= run.limit_bytes and stats.max_buffered_bytes <= run.limit_bytes
    # ~35 s of outage against a buffer of ~1 s of lines: most of the outage had to go.
    assert stats.dropped_lines > len(run.seqs_during) / 2 and stats.dropped_chunks > 0
    assert stats.received == produced and stats.pending_lines == 0
    assert stats.dropped_lines == produced - stats.delivered
    consumed = set(uids(consume_all(kafka_cfg, run.topic, stats.delivered)))
    assert len(consumed) == stats.delivered  # each delivered line arrived; no line counted both ways
    lost = {run.uid(seq).encode() for seq in range(produced)} - consumed
    assert len(lost) == stats.dropped_lines
    # Dropped oldest first: what was lost was written during the outage; the newest lines
    # of the outage (still in the buffer when Kafka came back) and everything before and
    # after it arrived.
    during = {run.uid(seq).encode() for seq in run.seqs_during}
    assert lost <= during
    assert {run.uid(seq).encode() for seq in run.seqs_before} <= consumed
    assert {run.uid(seq).encode() for seq in run.seqs_after} <= consumed
    newest_of_outage = {run.uid(seq).encode() for seq in run.seqs_during[-int(RATE / 2):]}  # its last 0.5 s
    assert newest_of_outage <= consumed
    print(f"tight buffer: {produced} lines, {stats.delivered} delivered, {stats.dropped_lines} dropped in "
          f"{stats.dropped_chunks} chunks, peak disk {run.max_disk_bytes} B of {run.limit_bytes} B")
